"""saas.crypto and `crm keys`: the key ring, blind indexes, the EncryptedText column, and rotation in
batches (raw SQL shows every token readable by the new key alone), resumable, with clear errors."""

from __future__ import annotations

import re

import pytest
from cryptography.fernet import Fernet, InvalidToken
from sqlalchemy import BigInteger, select, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from saas import crypto
from saas.crypto import CryptoError, EncryptedText
from tests.factories import CsrfClient, sql_value, unique

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()


@pytest.fixture
def keys(app, monkeypatch):
    """Set CRM_ENCRYPTION_KEYS for the test (restored afterwards)."""

    def use(*keys: str) -> None:
        monkeypatch.setitem(app.config, "CRM_ENCRYPTION_KEYS", ",".join(keys))

    return use


def _tokens(app, info) -> dict[int, str]:
    with app.app_context():
        from saas.extensions import db

        rows = db.session.execute(
            text(
                f"select id, custom->'national_id'->>'enc' from \"{info.schema}\".contacts"
                " where custom ? 'national_id' order by id"
            )
        ).all()
        db.session.remove()
    return dict(rows)


def _readable_by(key: str, token: str) -> bool:
    try:
        Fernet(key).decrypt(token.encode())
    except InvalidToken:
        return False
    return True


def _tenant_with_values(app, factory, count: int):
    """A workspace with a sensitive contact field and `count` contacts holding a value (plus one without)."""
    from saas import tenancy
    from saas.extensions import db
    from tenants.customers import fields, services
    from tenants.customers.people import Viewer

    info = factory.tenant()
    with app.test_request_context(), tenancy.bound(info.id, info.schema, info.slug):
        fields.create_field("contact", "National ID", "text", [], "national_id", sensitive=True)
        viewer = Viewer(info.people["owner"][0], "all")
        for n in range(count):
            services.create_contact(
                viewer,
                {
                    "first_name": f"P{n}",
                    "email": f"{unique('p')}@example.com",
                    "custom": {"national_id": f"ID-{n}"},
                },
            )
        services.create_contact(viewer, {"first_name": "Nobody", "email": f"{unique('n')}@example.com"})
        db.session.remove()
    return info


def _rotate(app, *args: str):  # noqa: ANN202
    result = app.test_cli_runner().invoke(args=["keys", "rotate", *args])
    return result.exit_code, result.output


# The key ring -----------------------------------------------------------------------------------


def test_encrypt_decrypt_and_a_missing_key_is_a_clear_error(app, keys):
    with app.app_context():
        keys(KEY_A)
        token = crypto.encrypt("1234-5678 ไทย")
        assert "1234" not in token and crypto.decrypt(token) == "1234-5678 ไทย"
        assert _readable_by(KEY_A, token) and not crypto.needs_rotation(token)
        keys(KEY_B, KEY_A)  # a new key first: old tokens still read, and need rotation
        assert crypto.decrypt(token) == "1234-5678 ไทย" and crypto.needs_rotation(token)
        assert not crypto.needs_rotation(crypto.encrypt("x"))
        rotated = crypto.rotate(token)
        assert _readable_by(KEY_B, rotated) and not _readable_by(KEY_A, rotated)
        keys(KEY_B)  # the old key dropped too early
        with pytest.raises(CryptoError, match="none of the keys in CRM_ENCRYPTION_KEYS"):
            crypto.decrypt(token)
        with pytest.raises(CryptoError, match="none of the keys"):
            crypto.decrypt(token[:-4] + "AAAA")  # altered
        keys("not-a-key", KEY_A)
        with pytest.raises(CryptoError, match="key number 1 is not a Fernet key"):
            crypto.encrypt("x")


def test_production_refuses_to_run_without_keys(app, keys, monkeypatch):
    monkeypatch.setitem(app.config, "ENV_NAME", "production")
    monkeypatch.setitem(app.config, "CRM_BLIND_INDEX_KEY", "")
    keys()
    with app.app_context():
        with pytest.raises(CryptoError, match="CRM_ENCRYPTION_KEYS is not set"):
            crypto.encrypt("x")
        keys(KEY_A)
        with pytest.raises(CryptoError, match="CRM_BLIND_INDEX_KEY is not set"):
            crypto.blind_index("x", "p")
        monkeypatch.setitem(app.config, "CRM_BLIND_INDEX_KEY", "short")
        with pytest.raises(CryptoError, match="too short"):
            crypto.blind_index("x", "p")
        monkeypatch.setitem(app.config, "CRM_BLIND_INDEX_KEY", "k" * 40)
        assert re.fullmatch(r"[0-9a-f]{64}", crypto.blind_index("x", "p"))
    keys()
    code, output = _rotate(app)
    assert code != 0 and "CRM_ENCRYPTION_KEYS is not set" in output


def test_development_keys_derive_from_secret_key(app, keys, monkeypatch):
    keys()
    with app.app_context():
        token = crypto.encrypt("dev")
        assert crypto.keyring().derived and crypto.decrypt(token) == "dev"
        monkeypatch.setitem(app.config, "SECRET_KEY", "another secret key")
        with pytest.raises(CryptoError):
            crypto.decrypt(token)


def test_blind_index_normalises_and_keeps_purposes_and_keys_apart(app, monkeypatch):
    with app.app_context():
        bi = crypto.blind_index
        assert bi("+1 (555) 010-1234", "f") == bi("15550101234", "f")
        assert bi("AB 12-34", "f") == bi("ab1234", "f") == bi("ＡＢ１２３４", "f")  # full-width too
        assert bi("5550101234", "f") != bi("15550101234", "f")  # a part is another value
        assert bi("ab1234", "f") != bi("ab1234", "g")
        assert bi("Jo@Example.COM ", "e", "email") == bi("jo@example.com", "e", "email")
        assert bi("tel: +66 81-234", "p", "phone") == bi("6681234", "p", "phone")
        before = bi("ab1234", "f")
        monkeypatch.setitem(app.config, "CRM_BLIND_INDEX_KEY", "x" * 40)
        assert bi("ab1234", "f") != before


# The EncryptedText column -----------------------------------------------------------------------


class _Base(DeclarativeBase):
    """Its own metadata: this test table is not part of the app's schema."""


class _Secret(_Base):
    __tablename__ = "crypto_test_secrets"
    __table_args__ = {"schema": "tenant"}  # the placeholder, as tenant models use

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    value: Mapped[str | None] = mapped_column(EncryptedText)


def test_encrypted_text_column_stores_tokens_and_the_audit_log_never_the_value(app, factory, keys):
    from saas import tenancy
    from saas.extensions import db

    keys(KEY_A)
    info = factory.tenant()
    with app.test_request_context(), tenancy.bound(info.id, info.schema, info.slug):
        db.session.execute(
            text(f'create table "{info.schema}".crypto_test_secrets (id bigint primary key, value text)')
        )
        db.session.add(_Secret(id=1, value="TAX-998877"))
        db.session.commit()
        raw = db.session.execute(text(f'select value from "{info.schema}".crypto_test_secrets')).scalar_one()
        assert "998877" not in raw and Fernet(KEY_A).decrypt(raw.encode()) == b"TAX-998877"
        db.session.remove()
        assert db.session.scalar(select(_Secret.value)) == "TAX-998877"
        row = db.session.get(_Secret, 1)
        row.value = "TAX-111"
        db.session.commit()
        db.session.remove()
    log = sql_value(
        app,
        f"select string_agg(changes::text, ' ') from \"{info.schema}\".audit_log where entity = 'crypto_test_secrets'",
    )
    assert "<encrypted>" in log and "998877" not in log and "TAX-111" not in log


# Rotation ---------------------------------------------------------------------------------------


def test_rotation_reencrypts_every_value_in_batches_and_resumes(app, factory, keys):
    keys(KEY_A)
    info = _tenant_with_values(app, factory, 7)
    before = _tokens(app, info)
    assert len(before) == 7 and all(
        _readable_by(KEY_A, t) and not _readable_by(KEY_B, t) for t in before.values()
    )
    stamps = sql_value(
        app, f"select string_agg(updated_at::text, ',' order by id) from \"{info.schema}\".contacts"
    )

    keys(KEY_B, KEY_A)  # the new key first, the old one still there
    # A run stopped after its first batch: three values done, four not.
    from saas import tenancy
    from tenants.customers.fields import reseal_batch

    with app.app_context(), tenancy.bound(info.id, info.schema, info.slug):
        first = reseal_batch("contact", 0, 3)
    assert (first.walked, first.changed) == (3, 3) and first.last_id == sorted(before)[2]
    halfway = _tokens(app, info)
    assert sum(_readable_by(KEY_B, t) for t in halfway.values()) == 3

    code, output = _rotate(app, "--batch", "3", "--tenant", info.slug)
    assert code == 0, output
    # Three batches of at most three (7 contacts hold a value; the one without is not walked).
    assert len(re.findall(rf"{info.slug} contact: \d+ records", output)) == 3
    assert f"{info.slug}: 7 records checked, 4 values re-encrypted" in output
    after = _tokens(app, info)
    assert set(after) == set(before)
    assert all(after[i] == halfway[i] for i in sorted(before)[:3])  # what was done is not redone
    assert all(_readable_by(KEY_B, t) and not _readable_by(KEY_A, t) for t in after.values())
    # Re-encrypting is not an edit: updated_at stays; the audit log says what happened.
    assert (
        sql_value(
            app, f"select string_agg(updated_at::text, ',' order by id) from \"{info.schema}\".contacts"
        )
        == stamps
    )
    assert (
        sql_value(app, f"select count(*) from \"{info.schema}\".audit_log where action = 'rotate_keys'") == 3
    )

    code, output = _rotate(app, "--tenant", info.slug)  # run again: nothing left to do
    assert code == 0 and f"{info.slug}: 7 records checked, 0 values re-encrypted" in output
    assert _tokens(app, info) == after

    keys(KEY_B)  # the old key dropped: everything still reads, and is still found by its value
    app.test_client_class = CsrfClient
    client = app.test_client()
    client.sign_in(info.owner_email)
    some_id = sorted(before)[5]
    page = client.get(f"/{info.slug}/customers/contacts/{some_id}").get_data(as_text=True)
    assert "ID-5" in page
    listed = client.get(f"/{info.slug}/customers/contacts?cf_national_id=id5").get_data(as_text=True)
    assert f'/customers/contacts/{some_id}"' in listed


def test_rotation_with_a_key_missing_reports_the_values_and_fails(app, factory, keys):
    keys(KEY_A)
    info = _tenant_with_values(app, factory, 2)
    keys(KEY_B)  # KEY_A dropped before rotating
    code, output = _rotate(app, "--tenant", info.slug)
    assert code == 1
    assert "2 values no key in CRM_ENCRYPTION_KEYS reads" in output and "2 unreadable" in output
    assert all(_readable_by(KEY_A, t) for t in _tokens(app, info).values())  # left as they were
    code, output = _rotate(app, "--tenant", "no-such-workspace")
    assert code != 0 and "no workspace" in output


def test_keys_generate_prints_a_fernet_key(app):
    result = app.test_cli_runner().invoke(args=["keys", "generate"])
    key = result.output.strip()
    assert result.exit_code == 0 and Fernet(key).decrypt(Fernet(key).encrypt(b"ok")) == b"ok"
