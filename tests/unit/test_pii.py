"""Normalisers, validators and the tenant cipher, on known-valid and known-invalid examples."""
import pytest
from cryptography.exceptions import InvalidTag

from fincdp.pii import (InvalidValue, LocalKeyFileProvider, TenantCipher, c3_fields, company_key, name_key,
                        normalize_credit_code, normalize_email, normalize_id_number, normalize_phone)


@pytest.mark.parametrize("raw", ["13812345678", "+86 138 1234 5678", "0086-138-1234-5678", "８６１３８１２３４５６７８",
                                 "(138)1234-5678", "１３８１２３４５６７８", "8613812345678"])
def test_mobile_variants_normalise_to_one_e164(raw):
    assert normalize_phone(raw) == "+8613812345678"


def test_landline_switchboard_is_a_valid_phone():
    assert normalize_phone("021-6888 1234") == "+862168881234"


@pytest.mark.parametrize("raw", ["1381234567", "12812345678", "abc", "", "138123456789"])
def test_invalid_mobiles_are_rejected(raw):
    with pytest.raises(InvalidValue) as info:
        normalize_phone(raw)
    assert raw == "" or raw not in str(info.value)  # the message never echoes the value


def test_email_is_lower_cased_nfkc_and_idna():
    assert normalize_email(" Zhang.Wei@HuaXin-Tech.COM ") == "zhang.wei@huaxin-tech.com"
    assert normalize_email("ｌｉ＠ｑｑ．ｃｏｍ") == "li@qq.com"
    assert normalize_email("wang@例子.中国") == "wang@xn--fsqu00a.xn--fiqs8s"


@pytest.mark.parametrize("raw", ["no-at-sign", "a@@b.com", "a@b", ".a@b.com", "a..b@c.com"])
def test_invalid_emails_are_rejected(raw):
    with pytest.raises(InvalidValue):
        normalize_email(raw)


def test_id_numbers_from_the_standard_pass_and_x_is_upper_cased():
    assert normalize_id_number("11010519491231002x") == ("11010519491231002X", None)
    assert normalize_id_number("440524188001010014")[0] == "440524188001010014"


@pytest.mark.parametrize("raw", ["110105194912310021", "11010519491331002X", "1101051949123100", "11010519491231002A"])
def test_bad_id_numbers_are_rejected(raw):
    with pytest.raises(InvalidValue):
        normalize_id_number(raw)


def test_legacy_15_digit_id_is_kept_with_a_warning():
    number, warning = normalize_id_number("110105491231002")
    assert number == "110105491231002" and "legacy" in warning


def test_credit_code_check_is_a_flag_not_a_rejection():
    assert normalize_credit_code("91512081ma62k0260e") == ("91512081MA62K0260E", True)
    assert normalize_credit_code("11320000MB151840XJ") == ("11320000MB151840XJ", True)
    assert normalize_credit_code("91350100M000100Y43") == ("91350100M000100Y43", True)
    assert normalize_credit_code("91350100M000100Y44") == ("91350100M000100Y44", False)
    with pytest.raises(InvalidValue):
        normalize_credit_code("91350100M000100Y4Z")  # Z is not in the GB 32100 charset
    with pytest.raises(InvalidValue):
        normalize_credit_code("91350100M000100Y4")  # 17 characters
    with pytest.raises(InvalidValue):
        normalize_credit_code("91350100M000100Y4O")  # O is not in the charset


def test_name_and_company_keys():
    assert name_key("阿卜杜・热合曼") == name_key("阿卜杜•热合曼") == "阿卜杜·热合曼"
    assert company_key("远航物流（上海）有限公司") == company_key("远航物流(上海)") == "远航物流(上海)"


def test_c3_fields_are_found_by_name_also_nested():
    assert c3_fields({"name": "x", "card_number": "6222..."}) == ["card_number"]
    assert c3_fields({"payload": {"CVV": "123"}}) == ["payload.CVV"]
    assert c3_fields({"name": "x", "mobile": "138"}) == []


@pytest.fixture
def ciphers(tmp_path):
    provider = LocalKeyFileProvider(tmp_path / "keys")
    return TenantCipher.for_tenant("t001", provider), TenantCipher.for_tenant("t002", provider)


def test_tokens_match_within_a_tenant_and_never_across(ciphers):
    a, b = ciphers
    assert a.token("phone", "+8613812345678") == a.token("phone", "+8613812345678")
    assert a.token("phone", "+8613812345678") != b.token("phone", "+8613812345678")
    assert a.token("phone", "x") != a.token("email", "x")


def test_ciphertext_round_trips_and_is_bound_to_tenant_and_column(ciphers):
    a, b = ciphers
    blob = a.encrypt("mobile", "+8613812345678")
    assert b"13812345678" not in blob
    assert a.decrypt("mobile", blob) == "+8613812345678"
    with pytest.raises(InvalidTag):
        a.decrypt("email", blob)
    with pytest.raises(InvalidTag):
        b.decrypt("mobile", blob)


def test_key_file_is_private_and_stable(tmp_path):
    provider = LocalKeyFileProvider(tmp_path / "keys")
    first = provider.master_key("t001")
    assert (tmp_path / "keys" / "t001.key").stat().st_mode & 0o777 == 0o600
    assert LocalKeyFileProvider(tmp_path / "keys").master_key("t001") == first
    with pytest.raises(FileNotFoundError):
        LocalKeyFileProvider(tmp_path / "keys", create=False).master_key("t003")


def test_encrypt_many_gives_every_value_its_own_nonce_and_binds_tenant_and_column(ciphers):
    a, b = ciphers
    values = ["+8613812345678"] * 50 + ["", "中文@例子.中国"]
    blobs = a.encrypt_many("mobile", values)
    assert len({blob[1:13] for blob in blobs}) == len(values)  # 96-bit nonces, all different
    assert len(set(blobs)) == len(values)
    assert [a.decrypt("mobile", blob) for blob in blobs] == values
    assert all(blob[:1] == b"\x01" and len(blob) == 1 + 12 + len(v.encode()) + 16 for blob, v in zip(blobs, values))
    with pytest.raises(InvalidTag):
        a.decrypt("email", blobs[0])
    with pytest.raises(InvalidTag):
        b.decrypt("mobile", blobs[0])
    assert a.encrypt_many("mobile", []) == []
