"""Privacy of personal data (个人信息保护): classification, encryption at rest, blind indexes,
masking in pages, exports and logs, and audited reveal. See ``docs/privacy.md``.

Plugins reach all of it through ``yiwang.api``.
"""

from __future__ import annotations

from yiwang.privacy.crypto import (
    DecryptionError,
    PrivacyError,
    bind_data_keys,
    blind_index,
    keys_of,
    normalise_for_index,
)
from yiwang.privacy.export import (
    TEXT_KINDS,
    csv_values,
    masked_row,
    text_fields,
    xlsx_append,
    xlsx_cells,
)
from yiwang.privacy.fields import (
    Codec,
    Encrypted,
    blind_equals,
    blind_in,
    blind_index_field,
    lookup,
    personal_field,
    sensitive_field,
)
from yiwang.privacy.idcard import IdInfo, InvalidIdNumber, check_char, upgrade_15, validate_id
from yiwang.privacy.masking import (
    KINDS,
    PersonalDataFilter,
    find_personal_data,
    install_log_masking,
    mask,
    mask_text,
)
from yiwang.privacy.registry import PersonalField, PrivacyRegistry, personal_fields_of
from yiwang.privacy.reveal import audit_reveal, check_purpose, reveal

__all__ = [
    "Codec",
    "DecryptionError",
    "Encrypted",
    "IdInfo",
    "InvalidIdNumber",
    "KINDS",
    "PersonalDataFilter",
    "PersonalField",
    "PrivacyError",
    "PrivacyRegistry",
    "TEXT_KINDS",
    "audit_reveal",
    "bind_data_keys",
    "blind_equals",
    "blind_in",
    "blind_index",
    "blind_index_field",
    "check_char",
    "check_purpose",
    "csv_values",
    "find_personal_data",
    "install_log_masking",
    "keys_of",
    "lookup",
    "mask",
    "mask_text",
    "masked_row",
    "normalise_for_index",
    "personal_field",
    "personal_fields_of",
    "reveal",
    "sensitive_field",
    "text_fields",
    "upgrade_15",
    "validate_id",
    "xlsx_append",
    "xlsx_cells",
]
