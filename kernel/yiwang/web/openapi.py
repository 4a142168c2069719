"""The OpenAPI 3.1 document of the JSON API (``GET /api/openapi.json``).

Written out rather than inferred: each operation says what a phone developer needs (auth,
idempotency, conflicts, Chinese error messages). A test checks that every ``/api/`` route is
described here, that every path described exists, and that the document is valid OpenAPI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from yiwang import __version__

if TYPE_CHECKING:
    from yiwang.kernel import Kernel


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str = "成功") -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


ERRORS = {
    "401": {"$ref": "#/components/responses/Unauthorized"},
    "403": {"$ref": "#/components/responses/Forbidden"},
    "422": {"$ref": "#/components/responses/Invalid"},
}
CASE_ID = {"name": "case_id", "in": "path", "required": True, "schema": {"type": "integer"}}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "object", "required": ["code", "message"], "properties": {
            "code": {"type": ["integer", "string"], "description": "HTTP 状态码，或 similar_cases 等业务代码"},
            "message": {"type": "string", "description": "中文说明"},
            "problems": {"type": "array", "items": {"type": "string"}, "description": "逐项问题（校验失败时）"},
            "request_id": {"type": "string"},
            "candidates": {"type": "array", "items": _ref("Similar")},
        }}},
    },
    "Tokens": {"type": "object", "properties": {
        "access_token": {"type": "string"}, "refresh_token": {"type": "string"},
        "token_type": {"const": "Bearer"}, "expires_in": {"type": "integer"},
        "must_change_password": {"type": "boolean"},
    }},
    "Field": {"type": "object", "required": ["name", "label", "kind", "required"], "properties": {
        "name": {"type": "string"}, "label": {"type": "string"},
        "kind": {"enum": ["text", "int", "choice"]}, "required": {"type": "boolean"},
        "choices": {"type": "array", "items": {"type": "object", "properties": {
            "value": {"type": "string"}, "label": {"type": "string"}}}},
        "min": {"type": "integer"}, "max": {"type": "integer"},
    }},
    "Action": {"type": "object", "required": ["name", "title"], "properties": {
        "name": {"type": "string"}, "title": {"type": "string"},
        "opinion_required": {"type": "boolean"}, "attachment_required": {"type": "boolean"},
        "route": {"type": "string", "description": "down: 需 target_org 或 assignee；copy: 需 copy_orgs"},
        "fields": {"type": "array", "items": _ref("Field")},
    }},
    "Case": {"type": "object", "required": ["id", "serial", "state", "version"], "properties": {
        "id": {"type": "integer"}, "serial": {"type": "string"}, "case_type": {"type": "string"},
        "case_type_title": {"type": "string"}, "title": {"type": "string"},
        "state": {"type": "string"}, "state_title": {"type": "string"},
        "channel": {"type": "string"}, "urgency": {"type": "string"}, "scale": {"type": "string"},
        "node": {"type": ["object", "null"]}, "org": {"type": ["object", "null"]},
        "assignee_id": {"type": ["integer", "null"]},
        "lat": {"type": ["number", "null"], "description": "WGS-84"}, "lon": {"type": ["number", "null"]},
        "address": {"type": "string"}, "due_at": {"type": ["string", "null"], "format": "date-time"},
        "card": {"enum": ["", "yellow", "red"]}, "card_title": {"type": "string"},
        "overdue": {"type": "boolean"}, "supervision": {"type": "string"},
        "rating": {"type": ["integer", "null"]}, "close_type": {"type": "string"},
        "version": {"type": "integer", "description": "操作时原样提交，用于并发冲突检测"},
        "created_at": {"type": "string", "format": "date-time"},
        "updated_at": {"type": "string", "format": "date-time"},
        "description": {"type": "string"}, "reporter_name": {"type": "string", "description": "已脱敏"},
        "reporter_phone": {"type": "string", "description": "已脱敏"}, "extra": {"type": "object"},
        "actions": {"type": "array", "items": _ref("Action")},
        "files": {"type": "array", "items": {"type": "object"}},
    }},
    "Step": {"type": "object", "properties": {
        "seq": {"type": "integer"}, "action": {"type": "string"}, "title": {"type": "string"},
        "from_state": {"type": "string"}, "to_state": {"type": "string"},
        "from_org": {"type": ["string", "null"]}, "to_org": {"type": ["string", "null"]},
        "actor": {"type": "string"}, "opinion": {"type": "string"}, "data": {"type": "object"},
        "entered_at": {"type": "string"}, "finished_at": {"type": "string"},
    }},
    "Similar": {"type": "object", "properties": {
        "id": {"type": "integer"}, "serial": {"type": "string"}, "title": {"type": "string"},
        "state": {"type": "string"}, "created_at": {"type": "string"}, "distance_m": {"type": "integer"},
    }},
    "Report": {"type": "object", "required": ["case_type", "title"], "properties": {
        "case_type": {"type": "string"}, "title": {"type": "string", "maxLength": 120},
        "description": {"type": "string"}, "node_id": {"type": "integer"}, "node_code": {"type": "string"},
        "lat": {"type": "number"}, "lon": {"type": "number"},
        "coord": {"enum": ["wgs84", "gcj02"], "description": "手机 GPS 为 wgs84，国内地图选点为 gcj02"},
        "address": {"type": "string"}, "urgency": {"enum": ["normal", "urgent", "critical"]},
        "scale": {"enum": ["small", "large", "major"]}, "channel": {"type": "string", "default": "phone"},
        "client_id": {"type": "string", "description": "幂等键（亦可用 Idempotency-Key 请求头）"},
        "confirm_new": {"type": "boolean", "description": "已看过疑似重复事件，仍然上报"},
        "extra": {"type": "object", "description": "事件类型的附加字段"},
        "reporter_name": {"type": "string"}, "reporter_phone": {"type": "string"},
    }},
    "ActionInput": {"type": "object", "required": ["version"], "properties": {
        "version": {"type": "integer"}, "opinion": {"type": "string"},
        "target_org": {"type": "integer"}, "assignee": {"type": "integer"},
        "copy_orgs": {"type": "array", "items": {"type": "integer"}}, "fields": {"type": "object"},
    }},
}  # fmt: skip


def _multipart(schema: str) -> dict[str, Any]:
    return {"content": {
        "application/json": {"schema": _ref(schema)},
        "multipart/form-data": {"schema": {"allOf": [_ref(schema), {"type": "object", "properties": {
            "files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}]}},
    }}  # fmt: skip


def paths() -> dict[str, Any]:
    return {
        "/api/auth/login": {"post": {
            "tags": ["认证"], "summary": "登录，取得绑定设备的令牌", "security": [],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object",
                "required": ["username", "password", "device_id"], "properties": {
                    "username": {"type": "string"}, "password": {"type": "string"},
                    "device_id": {"type": "string"}, "totp": {"type": "string"}}}}}},
            "responses": {"200": _json(_ref("Tokens")), "401": {"$ref": "#/components/responses/Unauthorized"}},
        }},
        "/api/auth/refresh": {"post": {
            "tags": ["认证"], "summary": "用刷新令牌换取新令牌（刷新令牌轮换）", "security": [],
            "requestBody": {"content": {"application/json": {"schema": {"type": "object", "properties": {
                "refresh_token": {"type": "string"}, "device_id": {"type": "string"}}}}}},
            "responses": {"200": _json(_ref("Tokens")), "401": {"$ref": "#/components/responses/Unauthorized"}},
        }},
        "/api/auth/logout": {"post": {
            "tags": ["认证"], "summary": "注销本设备令牌", "responses": {"200": _json({"type": "object"})},
        }},
        "/api/me": {"get": {
            "tags": ["认证"], "summary": "当前用户与其辖区", "responses": {"200": _json({"type": "object"}), **ERRORS},
        }},
        "/api/grids": {"get": {
            "tags": ["网格"], "summary": "我的网格", "responses": {"200": _json({"type": "object"}), **ERRORS},
        }},
        "/api/case-types": {"get": {
            "tags": ["事件"], "summary": "事件类型与其附加字段", "responses": {"200": _json({"type": "object"}), **ERRORS},
        }},
        "/api/cases": {
            "get": {
                "tags": ["事件"], "summary": "我的任务与事件列表（每页 20 条）",
                "parameters": [
                    {"name": "tab", "in": "query", "schema": {"enum": ["todo", "done", "overdue", "all"], "default": "todo"}},
                    {"name": "page", "in": "query", "schema": {"type": "integer", "minimum": 1}},
                    {"name": "q", "in": "query", "schema": {"type": "string"}},
                    {"name": "state", "in": "query", "schema": {"type": "string"}},
                    {"name": "case_type", "in": "query", "schema": {"type": "string"}},
                ],
                "responses": {"200": _json({"type": "object", "properties": {
                    "items": {"type": "array", "items": _ref("Case")}, "total": {"type": "integer"},
                    "page": {"type": "integer"}, "pages": {"type": "integer"}}}), **ERRORS},
            },
            "post": {
                "tags": ["事件"], "summary": "上报事件（可带照片、GPS 与幂等键）",
                "parameters": [{"name": "Idempotency-Key", "in": "header", "schema": {"type": "string"}}],
                "requestBody": _multipart("Report"),
                "responses": {
                    "201": _json(_ref("Case"), "已创建"),
                    "200": _json(_ref("Case"), "同一幂等键的事件已存在，返回该事件"),
                    "409": _json(_ref("Error"), "附近近期已有同类事件（code = similar_cases）"),
                    **ERRORS,
                },
            },
        },
        "/api/cases/similar": {"get": {
            "tags": ["事件"], "summary": "疑似重复：附近近 7 日同类事件",
            "parameters": [
                {"name": "case_type", "in": "query", "required": True, "schema": {"type": "string"}},
                {"name": "lat", "in": "query", "required": True, "schema": {"type": "number"}},
                {"name": "lon", "in": "query", "required": True, "schema": {"type": "number"}},
                {"name": "coord", "in": "query", "schema": {"enum": ["wgs84", "gcj02"]}},
            ],
            "responses": {"200": _json({"type": "object", "properties": {
                "candidates": {"type": "array", "items": _ref("Similar")}}}), **ERRORS},
        }},
        "/api/cases/{case_id}": {"get": {
            "tags": ["事件"], "summary": "事件详情与我可执行的操作", "parameters": [CASE_ID],
            "responses": {"200": _json(_ref("Case")), "404": {"$ref": "#/components/responses/NotFound"}, **ERRORS},
        }},
        "/api/cases/{case_id}/timeline": {"get": {
            "tags": ["事件"], "summary": "流转记录", "parameters": [CASE_ID],
            "responses": {"200": _json({"type": "object", "properties": {
                "steps": {"type": "array", "items": _ref("Step")}}}), **ERRORS},
        }},
        "/api/cases/{case_id}/files/{file_id}": {"get": {
            "tags": ["事件"], "summary": "下载附件（须有查看权限）",
            "parameters": [CASE_ID, {"name": "file_id", "in": "path", "required": True, "schema": {"type": "integer"}}],
            "responses": {"200": {"description": "文件内容"}, "404": {"$ref": "#/components/responses/NotFound"}, **ERRORS},
        }},
        "/api/cases/{case_id}/actions/{action}": {"post": {
            "tags": ["事件"], "summary": "执行操作（受理、派遣、处置反馈、核查、结案……）",
            "parameters": [CASE_ID, {"name": "action", "in": "path", "required": True, "schema": {"type": "string"}}],
            "requestBody": _multipart("ActionInput"),
            "responses": {
                "200": _json({"type": "object", "properties": {"case": _ref("Case"), "step": _ref("Step")}}),
                "409": _json(_ref("Error"), "已被他人处理：事件版本已变化"),
                **ERRORS,
            },
        }},
        "/api/notifications/unread": {"get": {
            "tags": ["消息"], "summary": "未读消息数", "responses": {"200": _json({"type": "object", "properties": {
                "unread": {"type": "integer"}}}), **ERRORS},
        }},
        "/api/openapi.json": {"get": {
            "tags": ["说明"], "summary": "本文档", "security": [], "responses": {"200": _json({"type": "object"})},
        }},
    }  # fmt: skip


def document(kernel: Kernel) -> dict[str, Any]:
    def error(description: str) -> dict[str, Any]:
        return _json(_ref("Error"), description)

    return {
        "openapi": "3.1.0",
        "info": {
            "title": f"{kernel.settings.site_name} 接口",
            "version": __version__,
            "description": "网格员手机与外部系统接口。令牌由 /api/auth/login 取得（绑定设备），"
            "以 Authorization: Bearer 提交；错误均为 JSON，含中文说明。",
        },
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": paths(),
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": SCHEMAS,
            "responses": {
                "Unauthorized": error("未登录或令牌无效"),
                "Forbidden": error("没有权限（超出辖区或未获授权）"),
                "Invalid": error("提交的内容有误，problems 列出每一项"),
                "NotFound": error("不存在"),
            },
        },
    }
