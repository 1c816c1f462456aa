from modelgrid.keys import hash_key, new_key, parse_bearer, public_prefix


def test_keys_are_random_and_stored_as_hashes() -> None:
    a, b = new_key(), new_key()
    assert a != b and a.startswith("mg-") and len(a) == 46
    assert hash_key(a) != a and len(hash_key(a)) == 64
    assert public_prefix(a) == a[:11]


def test_bearer_parsing() -> None:
    assert parse_bearer("Bearer mg-x") == "mg-x"
    assert parse_bearer("bearer   mg-x ") == "mg-x"
    assert parse_bearer("Basic abc") is None
    assert parse_bearer("Bearer ") is None
    assert parse_bearer(None) is None
