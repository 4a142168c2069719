"""Import (template, per-row Chinese errors, modes, all-or-nothing, background run) and export
(list filter, subtree scope, masking, audited reveal) of persons, and GB 11643 properties."""

from __future__ import annotations

import csv
import io
import json
import re
import time
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from yiwang.api import InvalidIdNumber, Node, blind_equals, stats, validate_id
from yiwang.testing import Users, audit_entries
from yiwang.testing.logcheck import no_personal_data_in_logs  # noqa: F401

from yiwang_population import hooks, importer, service
from yiwang_population.models import ImportRun, KindChange, Person

pytestmark = pytest.mark.with_plugins("population")

OWN_GRID = "45010700100101"
OWN_GRID2 = "45010700200101"
OTHER_GRID = "45010800100101"
HEADER = ["姓名", "公民身份号码", "类别", "性别", "民族", "联系电话", "户籍地址", "现住址", "职业",
          "所属网格编码", "标签"]  # fmt: skip


def _id(area: str = "450107", born: str = "19850101", seq: str = "123") -> str:
    body = area + born + seq
    return body + hooks.checksum(body)


def _row(name: str, id_number: Any, kind: str = "户籍", grid: Any = OWN_GRID, phone: Any = "",
         sex: str = "", occupation: str = "") -> list[Any]:  # fmt: skip
    return [name, id_number, kind, sex, "汉族", phone, "", "新竹路1号", occupation, grid, ""]


def _xlsx(rows: list[list[Any]]) -> bytes:
    wb = Workbook()
    ws = wb.active
    ws.append(HEADER)
    for r in rows:
        ws.append(r)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def _csv(rows: list[list[Any]]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    w.writerows(rows)
    return buf.getvalue().encode("utf-8-sig")


def _upload(client: Any, kernel: Any, data: bytes, name: str = "人口.xlsx", mode: str = "upsert",
            node: str = "450107") -> Any:  # fmt: skip
    token = Users(kernel).csrf(client, f"/p/population/import?node={node}")
    return client.post(f"/p/population/import?node={node}", files={"file": (name, data)},
                       data={"mode": mode}, headers={"X-CSRF-Token": token})  # fmt: skip


def _run_id(response: Any) -> int:
    m = re.search(r"/import/(\d+)$", str(response.url))
    assert m, response.text[:500]
    return int(m.group(1))


def _counts(html: str) -> dict[str, int]:
    return {k: int(v) for k, v in re.findall(r'data-count="(\w+)">(\d+)<', html)}


def _confirm(client: Any, kernel: Any, run_id: int) -> Any:
    token = Users(kernel).csrf(client, f"/p/population/import/{run_id}")
    return client.post(f"/p/population/import/{run_id}/confirm", headers={"X-CSRF-Token": token})


def _wait(client: Any, run_id: int) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        page = client.get(f"/p/population/import/{run_id}/progress").text
        if "every 1s" not in page:
            return str(page)
        time.sleep(0.05)
    raise AssertionError("导入未在 30 秒内结束")


def _detail(entry: Any) -> dict[str, Any]:
    d = entry.detail
    return dict(json.loads(d) if isinstance(d, str) else d)


def _persons(kernel: Any) -> int:
    with kernel.db.read() as s:
        return int(s.scalar(select(func.count()).select_from(Person)) or 0)


@pytest.fixture(params=["one process", "worker process"])
def paths(request: Any, monkeypatch: Any) -> str:
    """Apply a file in this process, or — as a large file is — with a worker process parsing,
    validating and sealing (``importer.PARALLEL_ROWS``)."""
    if request.param == "worker process":
        monkeypatch.setattr(importer, "PARALLEL_ROWS", 1)
    return str(request.param)


@pytest.fixture
def net(grid: Any) -> Any:
    for code in (OWN_GRID, OWN_GRID2, OTHER_GRID):
        grid.node(code)
    return grid


# --- template -----------------------------------------------------------------------------------


def test_template_has_text_id_and_phone_columns_dropdowns_and_help(
    client: Any, net: Any, login: Any
) -> None:
    login("county_staff", "450107")
    r = client.get("/p/population/import/template.xlsx")
    assert r.status_code == 200 and "spreadsheetml" in r.headers["content-type"]
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb.worksheets[0]
    header = [c.value for c in ws[1]]
    assert header[:3] == ["姓名", "公民身份号码", "类别"] and "所属网格编码" in header
    id_col = header.index("公民身份号码") + 1
    phone_col = header.index("联系电话") + 1
    assert ws.cell(2, id_col).number_format == "@" and ws.cell(500, id_col).number_format == "@"
    assert ws.cell(2, phone_col).number_format == "@"
    assert ws.cell(2, header.index("姓名") + 1).number_format != "@"
    lists = {str(dv.sqref): dv.formula1 for dv in ws.data_validations.dataValidation}
    assert any(f == '"户籍,流动,境外,未落户"' and ref.startswith("C2") for ref, f in lists.items())
    assert '"男,女"' in lists.values()
    assert wb.sheetnames[1] == "填写说明"
    notes = {
        row[0]: row[2] for row in wb["填写说明"].iter_rows(min_row=2, values_only=True) if row[0]
    }
    assert "文本格式" in notes["公民身份号码"]
    r = client.get("/p/population/import/template.csv")
    assert r.content.decode("utf-8-sig").splitlines()[0].split(",")[:2] == ["姓名", "公民身份号码"]
    login("leader", "450107")  # sees the register but keeps none: no import
    assert client.get("/p/population/import/template.xlsx").status_code == 403
    assert client.get("/p/population/import").status_code == 403


# --- rejections ---------------------------------------------------------------------------------


def test_every_bad_row_is_reported_in_chinese_and_nothing_is_written(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    login("county_staff", "450107")
    rows = [
        _row("张三", _id()),  # 2: good
        _row("李四", int(_id(seq="125"))),  # 3: an Excel number cell
        _row("王五", "4.50107E+17"),  # 4: a number shown in scientific notation
        _row("赵六", _id(seq="127")[:-1] + ("0" if _id(seq="127")[-1] != "0" else "1")),  # 5
        _row("钱七", _id(born="19850230")),  # 6: no such date
        _row("孙八", _id(seq="131"), kind="外星"),  # 7
        _row("周九", _id(seq="133"), grid=""),  # 8
        _row("吴十", _id(seq="135"), grid="45010799999999"),  # 9
        _row("郑一", _id(seq="137"), grid=OTHER_GRID),  # 10: another county
        _row("张三", _id()),  # 11: same ID as row 2
        _row("冯二", _id(seq="139"), phone="12ab"),  # 12
        _row("陈三", _id(area="100107", seq="141")),  # 13: unknown area: a warning only
        _row("褚四", _id(seq="143"), sex="女"),  # 14: sequence odd = 男
    ]
    r = _upload(client, kernel, _xlsx(rows))
    assert r.status_code == 200
    page = r.text
    expected = {
        3: "公民身份号码须为文本格式（18 位），数字格式会丢失末位",
        4: "公民身份号码须为文本格式（18 位），数字格式会丢失末位",
        5: "校验位不符",
        6: "出生日期",
        7: "类别“外星”无法识别",
        8: "所属网格编码不能为空",
        9: "网格编码 45010799999999 不存在",
        10: f"网格 {OTHER_GRID} 不在您的管辖范围内",
        11: "与第 2 行重复",
        12: "联系电话格式不正确",
        14: "性别与公民身份号码不符",
    }
    for row, message in expected.items():
        assert re.search(rf"<td>第 {row} 行</td><td>[^<]+</td><td>[^<]*{message}", page), (
            row,
            message,
        )
    assert "<td>第 2 行</td>" not in page
    assert re.search(r'<tr class="warning"><td>第 13 行</td><td>公民身份号码</td><td>地区码', page)
    assert _counts(page) == {"total": 13, "inserted": 2, "updated": 0, "unchanged": 0,
                             "claimed": 0, "errors": 11}  # fmt: skip
    assert "确认导入" not in page and _id() not in page
    run_id = _run_id(r)
    assert _confirm(client, kernel, run_id).status_code == 422
    assert _persons(kernel) == 0
    report = client.get(f"/p/population/import/{run_id}/errors.xlsx")
    ws = load_workbook(io.BytesIO(report.content)).worksheets[0]
    values = list(ws.iter_rows(values_only=True))
    assert values[0][-1] == "错误说明" and len(values) == 14
    assert values[1][-1] in (None, "") and "与第 2 行重复" in values[10][-1]
    assert "数字格式会丢失末位" in values[2][-1]
    assert ws.cell(2, 2).value == _id() and ws.cell(2, 2).number_format == "@"
    assert [e.detail for e in audit_entries(kernel, action="population.import")] == []


def test_csv_rejects_numbers_that_lost_digits_and_reads_gb18030(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    login("county_staff", "450107")
    data = _csv([_row("张三", "4.50107E+17"), _row("李四", _id(seq="125")[:17])])
    page = _upload(client, kernel, data, "人口.csv").text
    assert page.count("数字格式会丢失末位") == 2
    gbk = _csv([_row("张三", _id())]).decode("utf-8-sig").encode("gb18030")
    page = _upload(client, kernel, gbk, "人口.csv").text
    assert _counts(page)["inserted"] == 1 and "确认导入 1 行" in page


def test_a_large_file_is_checked_in_batches_across_which_duplicates_are_found(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    _register(kernel, net, OWN_GRID, _id(seq="001"), name="已登记")
    login("county_staff", "450107")
    rows = [_row(f"人{i}", _id(born=f"1980{1 + i // 28 % 12:02d}{1 + i % 28:02d}", seq=f"{i // 336:03d}"))
            for i in range(1200)]  # fmt: skip
    rows.append(rows[700])  # row 1202 repeats row 702, two batches later
    page = _upload(client, kernel, _csv(rows), "大文件.csv").text
    assert _counts(page) == {"total": 1201, "inserted": 1200, "updated": 0, "unchanged": 0,
                             "claimed": 0, "errors": 1}  # fmt: skip
    assert re.search(r"<td>第 1202 行</td><td>公民身份号码</td><td>与第 702 行重复", page)


def test_the_worker_process_decides_every_row_as_this_process_does(
    kernel: Any, net: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    """A large file's rows are checked in a worker process: each row's action, errors and
    warnings equal the one-process check's, across batches, and a packed row unpacks whole."""
    monkeypatch.setattr(importer, "BATCH", 4)
    _register(kernel, net, OWN_GRID, _id(seq="125"), name="李四", kind="registered")
    _register(kernel, net, OWN_GRID2, _id(seq="127"), name="王五")
    rows = [
        _row("新人", _id(seq="101")), _row("李四", _id(seq="125"), kind="流动"),  # new; update
        _row("王五", _id(seq="127")),  # claim: held by another grid
        _row("坏号", _id(seq="103")[:-1] + "0"), _row("", _id(seq="105")),  # bad checksum; no name
        _row("无网格", _id(seq="107"), grid="45010799999999"), _row("外区", _id(seq="109"), grid=OTHER_GRID),
        _row("重复", _id(seq="101")), _row("旧号", "450107850101111"),  # duplicate; 15 digits
        _row("怪区", _id(area="001234", seq="113")), _row("错电话", _id(seq="115"), phone="12ab"),
        _row("性别", _id(seq="117"), sex="女"),
    ]  # fmt: skip
    path = tmp_path / "人口.csv"
    path.write_bytes(_csv(rows))
    allowed = lambda p: p.startswith(net.get("450107").path)  # noqa: E731

    def seen(source: Any) -> list[Any]:
        return [(o.number, o.action, [(e.column, e.message) for e in o.errors],
                 [(w.column, w.message) for w in o.warnings], o.bidx, o.kind, o.values)
                for b in source for o in b]  # fmt: skip

    with kernel.db.write() as s:
        sealer = importer.bulk.Sealer(s)
        one = seen(importer.batches(s, path, "csv", mode="upsert", allowed=allowed))
        two = seen(importer._parallel_batches(s, path, "csv", mode="upsert", allowed=allowed, sealer=sealer))
    assert two == one
    actions = [a for _, a, *_ in one[1:]]
    assert actions == ["new", "update", "claim", *["error"] * 5, "new", "new", "error", "error"]
    assert one[9][3] and one[10][3]  # the 15-digit number and the unknown area code: warnings
    out = importer.Outcome(5, [], errors=[importer.RowError(5, "姓名", "x")], values=dict.fromkeys(importer._VALUE_KEYS, "") | {"name": "甲"},
                           info=validate_id(_id()), kind="registered", bidx="b", sealed=("s",))  # fmt: skip
    back, cell, dup = importer._unpack(importer._pack(out, OWN_GRID, 3))
    assert (back, cell, dup) == (out, OWN_GRID, 3) and back.values.keys() == set(importer._VALUE_KEYS)


def test_missing_columns_and_bad_files_are_refused(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    login("county_staff", "450107")
    r = _upload(client, kernel, b"name,foo\n1,2\n", "x.csv")
    assert r.status_code == 422 and "缺少列" in r.text and "公民身份号码" in r.text
    r = _upload(client, kernel, b"not a zip", "x.xlsx")
    assert r.status_code == 422 and "无法读取" in r.text
    r = _upload(client, kernel, b"a", "x.txt")
    assert r.status_code == 422 and "不支持的文件格式" in r.text


# --- modes, upsert, background run --------------------------------------------------------------


def _register(kernel: Any, grid: Any, code: str, id_number: str, **kw: Any) -> Any:
    with kernel.db.write() as s:
        return service.register(s, s.get(Node, grid.get(code).id), id_number=id_number, **kw).person


def test_upsert_runs_in_the_background_updates_and_keeps_kind_history(
    client: Any, kernel: Any, net: Any, login: Any, paths: str
) -> None:
    old = _register(kernel, net, OWN_GRID, _id(), name="张三", kind="floating", phone="13912345678")
    same = _register(kernel, net, OWN_GRID, _id(seq="125"), name="李四", kind="registered",
                     ethnicity="汉族", address="新竹路1号")  # fmt: skip
    _register(kernel, net, OWN_GRID2, _id(seq="127"), name="王五")  # held by another grid
    login("county_staff", "450107")
    rows = [
        _row("张三", _id(), kind="户籍", phone="13800005678", occupation="教师"),  # update + kind
        _row("李四", _id(seq="125"), kind="户籍"),  # unchanged (empty cells keep values)
        _row("王五", _id(seq="127"), kind="流动"),  # another grid holds it: a claim
        *[_row(f"新{i}", _id(seq=f"{201 + 2 * i:03d}"), kind="流动") for i in range(60)],
    ]
    r = _upload(client, kernel, _xlsx(rows))
    assert _counts(r.text) == {"total": 63, "inserted": 60, "updated": 1, "unchanged": 1,
                               "claimed": 1, "errors": 0}  # fmt: skip
    run_id = _run_id(r)
    assert _persons(kernel) == 3  # the preview writes nothing
    page = _confirm(client, kernel, run_id)
    assert page.status_code == 200 and ("导入中" in page.text or "已完成" in page.text)
    done = _wait(client, run_id)
    assert "已完成" in done
    assert _counts(done) == {"total": 63, "inserted": 60, "updated": 1, "unchanged": 1,
                             "claimed": 1, "errors": 0}  # fmt: skip
    assert "已完成" in client.get(f"/p/population/import/{run_id}").text
    with kernel.db.read() as s:
        p = s.get(Person, old.id)
        assert (p.kind, p.phone, p.occupation, p.ethnicity) == (
            "registered", "13800005678", "教师", "汉族")  # fmt: skip
        [change] = s.scalars(select(KindChange).where(KindChange.person_id == old.id)).all()
        assert (change.old_kind, change.new_kind) == ("floating", "registered")
        assert s.get(Person, same.id).kind == "registered"
    assert _persons(kernel) == 63
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []
        assert stats.by_key(s, "population.persons", net.get("450107").id)["floating"] == 60
    [entry] = audit_entries(kernel, action="population.import")
    assert _detail(entry)["inserted"] == 60 and _detail(entry)["status"] == "done"
    assert _id() not in str(entry.detail) and "张三" not in str(entry.detail)
    assert len(audit_entries(kernel, action="population.person.create")) == 3
    [batch] = audit_entries(kernel, action="population.person.import")  # one record per batch
    assert _detail(batch)["count"] == 60 and _detail(batch)["kinds"]["floating"] == 60
    assert _detail(batch)["rows"] == [5, 64]
    assert len(audit_entries(kernel, action="population.person.update")) == 1
    assert len(audit_entries(kernel, action="population.claim.create")) == 1
    # confirming again is refused
    assert _confirm(client, kernel, run_id).status_code == 422


def test_the_progress_page_polls_while_a_run_is_in_progress(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    login("county_staff", "450107")
    run_id = _run_id(_upload(client, kernel, _xlsx([_row("张三", _id())])))
    with kernel.db.write() as s:  # as the confirm leaves it before the thread ends
        run = s.get(ImportRun, run_id)
        run.status = "running"
        s.add(run)
    page = client.get(f"/p/population/import/{run_id}").text
    assert 'hx-trigger="every 1s"' in page and f"/import/{run_id}/progress" in page
    assert "<progress" in page and "导入中" in page


def test_insert_only_and_update_only_modes(client: Any, kernel: Any, net: Any, login: Any, paths: str) -> None:
    _register(kernel, net, OWN_GRID, _id(), name="张三", ethnicity="汉族", address="新竹路1号")
    login("county_staff", "450107")
    rows = [_row("张三", _id()), _row("李四", _id(seq="125"))]
    page = _upload(client, kernel, _xlsx(rows), mode="insert").text
    assert "仅新增模式不更新已有人员" in page and "<td>第 2 行</td>" in page
    page = _upload(client, kernel, _xlsx(rows), mode="update").text
    assert "仅更新模式不新增人员" in page and "<td>第 3 行</td>" in page
    page = _upload(client, kernel, _xlsx([_row("张三", _id(), kind="")]), mode="update").text
    assert _counts(page)["unchanged"] == 1


def test_a_failure_on_the_last_row_leaves_nothing_written(
    client: Any, kernel: Any, net: Any, login: Any, paths: str
) -> None:
    login("county_staff", "450107")
    rows = [_row(f"人{i}", _id(seq=f"{101 + 2 * i:03d}")) for i in range(5)]
    r = _upload(client, kernel, _xlsx(rows), mode="insert")
    assert _counts(r.text)["errors"] == 0
    run_id = _run_id(r)
    # Between preview and confirm someone registers the last row's person in that grid.
    _register(kernel, net, OWN_GRID, _id(seq="109"), name="人4")
    _confirm(client, kernel, run_id)
    page = _wait(client, run_id)
    assert "未导入" in page and "第 6 行" in page and "仅新增模式不更新已有人员" in page
    assert _persons(kernel) == 1  # rows 2–5 were not written
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []
    [entry] = audit_entries(kernel, action="population.import")
    assert _detail(entry)["status"] == "failed"


def test_a_failure_batches_after_written_ones_rolls_them_all_back(
    client: Any, kernel: Any, net: Any, login: Any, paths: str, monkeypatch: Any
) -> None:
    monkeypatch.setattr(importer, "BATCH", 7)  # the import writes batch by batch
    login("county_staff", "450107")
    rows = [_row(f"人{i}", _id(seq=f"{101 + 2 * i:03d}"), phone="13912345678") for i in range(40)]
    run_id = _run_id(_upload(client, kernel, _csv(rows), "人口.csv", mode="insert"))
    _register(kernel, net, OWN_GRID, _id(seq=f"{101 + 2 * 37:03d}"), name="人37")  # in batch 6 of 6
    _confirm(client, kernel, run_id)
    page = _wait(client, run_id)
    assert "未导入" in page and "第 39 行" in page
    assert _persons(kernel) == 1  # the five batches written first were rolled back
    assert audit_entries(kernel, action="population.person.import") == []
    with kernel.db.write() as s:
        assert stats.recount(kernel, s, check=True) == []
        assert stats.by_key(s, "population.persons", net.get("450107").id)["registered"] == 1


def test_imported_persons_are_stored_as_the_service_stores_them(
    client: Any, kernel: Any, net: Any, login: Any, paths: str
) -> None:
    login("county_staff", "450107")
    row = _row("赵六", _id(seq="131"), kind="境外", phone="139 1234 5678", occupation="教师")
    run_id = _run_id(_upload(client, kernel, _csv([row]), "人口.csv"))
    _confirm(client, kernel, run_id)
    assert "已完成" in _wait(client, run_id)
    with kernel.db.read() as s:
        [p] = s.scalars(select(Person)).all()  # decrypts: the ciphertexts are the kernel's
        assert (p.name, p.id_number, p.phone, p.kind, p.sex, p.occupation, p.address) == (
            "赵六", _id(seq="131"), "139 1234 5678", "foreign", "男", "教师", "新竹路1号")  # fmt: skip
        assert p.birth_date == date(1985, 1, 1) and p.hukou_address is None
        assert p.created_at is not None
        # the blind indexes are the ones the unit of work makes: lookups find the person
        assert s.scalars(select(Person).where(blind_equals(Person.id_number, _id(seq="131")))).one().id == p.id
        assert s.scalars(select(Person).where(blind_equals(Person.phone, "13912345678"))).one().id == p.id
    # a second import of the same row in the same grid is an update, not a duplicate
    run_id = _run_id(_upload(client, kernel, _csv([_row("赵六", _id(seq="131"), kind="户籍")]), "人口.csv"))
    _confirm(client, kernel, run_id)
    assert _counts(_wait(client, run_id))["updated"] == 1


def test_other_users_cannot_see_or_confirm_an_import(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    login("county_staff", "450107")
    run_id = _run_id(_upload(client, kernel, _xlsx([_row("张三", _id())])))
    client.cookies.clear()
    login("county_staff", "450107")
    assert client.get(f"/p/population/import/{run_id}").status_code == 404
    assert _confirm(client, kernel, run_id).status_code == 404
    assert client.get(f"/p/population/import/{run_id}/errors.xlsx").status_code == 404


def test_community_staff_cannot_import_into_a_neighbouring_community(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    login("community_staff", OWN_GRID[:12])
    rows = [_row("张三", _id()), _row("李四", _id(seq="125"), grid=OWN_GRID2)]
    page = _upload(client, kernel, _xlsx(rows), node=OWN_GRID[:12]).text
    assert f"网格 {OWN_GRID2} 不在您的管辖范围内" in page and "<td>第 3 行</td>" in page


# --- export -------------------------------------------------------------------------------------


def _export_rows(content: bytes) -> tuple[list[Any], list[list[Any]], Any]:
    ws = load_workbook(io.BytesIO(content)).worksheets[0]
    values = [list(r) for r in ws.iter_rows(values_only=True)]
    return values[0], values[1:], ws


def test_export_is_scoped_filtered_and_masked(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    _register(kernel, net, OWN_GRID, _id(), name="张三", phone="13912345678", kind="floating")
    _register(kernel, net, OWN_GRID2, _id(seq="125"), name="李四")
    _register(kernel, net, OTHER_GRID, _id(area="450108"), name="王五")
    login("county_staff", "450107")
    r = client.get("/p/population/export.xlsx")
    assert r.status_code == 200
    header, rows, ws = _export_rows(r.content)
    assert len(rows) == 2 and {row[header.index("所属网格编码")] for row in rows} == {
        OWN_GRID,
        OWN_GRID2,
    }
    first = rows[0]
    assert first[header.index("姓名")] == "张*"
    assert first[header.index("公民身份号码")] == "450" + "*" * 11 + _id()[-4:]
    assert first[header.index("联系电话")] == "139****5678"
    assert first[header.index("出生日期")] in ("", None)
    assert ws.cell(2, header.index("公民身份号码") + 1).number_format == "@"
    assert ws.cell(2, header.index("联系电话") + 1).number_format == "@"
    assert _id() not in r.text and "13912345678" not in r.text
    filtered = _export_rows(client.get("/p/population/export.xlsx?kind=floating").content)[1]
    assert [row[0] for row in filtered] == ["张*"]
    text = client.get("/p/population/export.csv?q=李").content.decode("utf-8-sig")
    lines = list(csv.reader(io.StringIO(text)))
    assert len(lines) == 2 and lines[1][0] == "李*" and lines[1][1].startswith("450***")
    assert client.get("/p/population/export.xlsx?node=450108").status_code == 403
    [entry, *_] = audit_entries(kernel, action="population.export")
    assert _detail(entry)["masked"] is True and _detail(entry)["count"] == 1


def test_plain_export_needs_the_reveal_grant_and_a_purpose(
    client: Any, kernel: Any, net: Any, login: Any
) -> None:
    _register(kernel, net, OWN_GRID, _id(), name="张三", phone="13912345678")
    url = f"/p/population/export.xlsx?node={OWN_GRID[:12]}"
    login("county_staff", "450107")  # no privacy.reveal
    token = Users(kernel).csrf(client, "/p/population/")
    r = client.post(url, data={"purpose": "核实流动人口"}, headers={"X-CSRF-Token": token})
    assert r.status_code == 403 and _id() not in r.text
    client.cookies.clear()
    login("community_staff", OWN_GRID[:12])
    page = client.get(f"/p/population/?node={OWN_GRID[:12]}").text
    assert "导出明文" in page and "export.xlsx" in page
    token = Users(kernel).csrf(client, "/p/population/")
    r = client.post(url, data={"purpose": " "}, headers={"X-CSRF-Token": token})
    assert r.status_code == 422 and "用途" in r.text
    assert audit_entries(kernel, action="privacy.reveal") == []
    r = client.post(url, data={"purpose": "核实流动人口"}, headers={"X-CSRF-Token": token})
    header, rows, _ = _export_rows(r.content)
    assert rows[0][header.index("公民身份号码")] == _id()
    assert rows[0][header.index("联系电话")] == "13912345678" and rows[0][0] == "张三"
    assert rows[0][header.index("出生日期")] == "1985-01-01"
    [entry] = audit_entries(kernel, action="privacy.reveal")
    assert entry.purpose == "核实流动人口" and entry.object_id == "export"
    assert _id() not in str(entry.detail)


# --- GB 11643 properties --------------------------------------------------------------------------

AREAS = st.from_regex(r"\A(11|12|13|31|32|44|45|50|51|65)[0-9]{4}\Z")
BIRTHS = st.dates(min_value=date(1900, 1, 1), max_value=date(2025, 12, 31))
SEQS = st.integers(min_value=0, max_value=999)


def _make(area: str, born: date, seq: int) -> str:
    body = f"{area}{born:%Y%m%d}{seq:03d}"
    return body + hooks.checksum(body)


@given(AREAS, BIRTHS, SEQS)
def test_generated_ids_validate_and_derive_birth_date_and_sex(
    area: str, born: date, seq: int
) -> None:
    number = _make(area, born, seq)
    info = validate_id(number)
    assert info.number == number and info.birth_date == born and info.area_code == area
    assert info.sex == ("男" if seq % 2 else "女")
    assert validate_id(number.lower()).number == number  # a lower-case x is accepted


@given(AREAS, BIRTHS, SEQS, st.integers(0, 17), st.integers(1, 10))
def test_any_single_character_change_is_rejected(
    area: str, born: date, seq: int, pos: int, delta: int
) -> None:
    number = _make(area, born, seq)
    chars = "0123456789X" if pos == 17 else "0123456789"
    new = chars[(chars.index(number[pos]) + delta) % len(chars)]
    if new == number[pos]:
        return
    changed = number[:pos] + new + number[pos + 1 :]
    with pytest.raises(InvalidIdNumber):
        validate_id(changed)


@given(AREAS, BIRTHS, SEQS, st.integers(0, 16))
def test_adjacent_transpositions_are_rejected(area: str, born: date, seq: int, pos: int) -> None:
    number = _make(area, born, seq)
    a, b = number[pos], number[pos + 1]
    if a == b or b == "X":
        return
    swapped = number[:pos] + b + a + number[pos + 2 :]
    with pytest.raises(InvalidIdNumber):
        validate_id(swapped)


@given(AREAS, st.dates(min_value=date(1900, 1, 1), max_value=date(1999, 12, 31)), SEQS)
def test_15_digit_numbers_upgrade_and_round_trip(area: str, born: date, seq: int) -> None:
    old = f"{area}{born:%y%m%d}{seq:03d}"
    info = validate_id(old)
    assert info.legacy and info.number == _make(area, born, seq)
    assert info.birth_date == born and info.sex == ("男" if seq % 2 else "女")
    assert info.number[:6] + info.number[8:17] == old  # dropping "19" and the check gives it back
    assert validate_id(info.number).number == info.number and not validate_id(info.number).legacy


def test_the_checksum_catches_what_a_spreadsheet_does_to_a_number() -> None:
    number = _make("450107", date(1985, 1, 1) + timedelta(days=3), 123)
    rounded = number[:15] + "000"  # Excel keeps 15 significant digits
    if rounded != number:
        with pytest.raises(InvalidIdNumber):
            validate_id(rounded)
    with pytest.raises(InvalidIdNumber, match="数字格式"):
        validate_id(float(number[:17]))
    assert importer.NUMERIC_ID.startswith("公民身份号码须为文本格式")


def test_the_table_of_id_numbers_seen_finds_every_first_row_as_it_grows() -> None:
    seen = importer._Seen(capacity=8)
    numbers = [_id(born=f"19{60 + i // 300:02d}0101", seq=f"{i % 300:03d}") for i in range(9000)]
    assert all(seen.first(n, row) == row for row, n in enumerate(numbers, start=2))
    assert all(seen.first(n, 99_999) == row for row, n in enumerate(numbers, start=2))
    assert seen.first(_id(seq="999"), 5) == 5  # a number not seen yet
