from agent.redact import MASK, Redactor

ACCESS_KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ=="


def test_access_key_ids_are_masked_by_their_shape():
    text = Redactor().text(f"pulling with {ACCESS_KEY} and ASIAY34FZKBOKMUTVV7A now")
    assert ACCESS_KEY not in text and "ASIAY34FZKBOKMUTVV7A" not in text
    assert text == f"pulling with {MASK} and {MASK} now"


def test_values_assigned_to_secret_names_are_masked_in_every_syntax():
    samples = [
        f"AWS_SECRET_ACCESS_KEY={SECRET_KEY}",  # shell / env file / compose list form
        f"      AWS_SESSION_TOKEN: {SESSION_TOKEN}",  # compose map form (YAML)
        f'{{"AWS_SECRET_ACCESS_KEY": "{SECRET_KEY}", "Region": "us-east-1"}}',  # JSON
        f"aws_secret_access_key = {SECRET_KEY}",  # ini (credentials file)
        "db_password=hunter2hunter2",
        "GITHUB_TOKEN: ghp_abcdefghijklmnop",
    ]
    for sample in samples:
        redacted = Redactor().text(sample)
        for secret in (SECRET_KEY, SESSION_TOKEN, "hunter2hunter2", "ghp_abcdefghijklmnop"):
            assert secret not in redacted, sample
        assert MASK in redacted
    assert '"Region": "us-east-1"' in Redactor().text(samples[2])


def test_known_secret_values_are_masked_wherever_they_appear():
    redactor = Redactor.from_environment({"AWS_SECRET_ACCESS_KEY": SECRET_KEY, "HOME": "/nonexistent"})
    text = redactor.text(f"Traceback: signature mismatch for {SECRET_KEY}!")
    assert text == f"Traceback: signature mismatch for {MASK}!"


def test_secrets_from_the_shared_credentials_file_are_known(tmp_path):
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[default]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
        f"aws_session_token = {SESSION_TOKEN}\nregion = eu-central-1\n"
    )
    redactor = Redactor.from_environment({"AWS_SHARED_CREDENTIALS_FILE": str(creds)})
    blob = redactor.text(f"{SECRET_KEY} {SESSION_TOKEN} eu-central-1")
    assert blob == f"{MASK} {MASK} eu-central-1"


def test_ordinary_text_is_left_alone():
    text = (
        "763104351884.dkr.ecr.us-east-1.amazonaws.com/tensorflow-training:2.1.0-cpu-py3 "
        "sha256:0d99192affdfd73151102faeb25898391aaf8d5692c7103537eaff339aa225d2 keep=3 "
        "no space left on device"
    )
    assert Redactor().text(text) == text


def test_structures_are_redacted_recursively_and_secret_named_fields_entirely():
    redactor = Redactor([SECRET_KEY])
    data = {
        "api_key": "anything at all",
        "nested": [{"log": f"key is {SECRET_KEY}"}, ("AWS_SESSION_TOKEN=abc123",)],
        "count": 3,
        "token_count": 7,
    }
    assert redactor.value(data) == {
        "api_key": MASK,
        "nested": [{"log": f"key is {MASK}"}, (f"AWS_SESSION_TOKEN={MASK}",)],
        "count": 3,
        "token_count": 7,
    }


def test_python_exceptions_named_like_secrets_are_not_masked():
    redactor = Redactor()
    assert redactor.text("KeyError: 'model_fn'") == "KeyError: 'model_fn'"
    assert redactor.text("TokenizerException: bad input") == "TokenizerException: bad input"
    assert redactor.text("api_key: abc123") == "api_key: [redacted]"


def test_credentials_inside_urls_are_masked_by_their_place():
    redactor = Redactor()
    text = redactor.text("proxy http://alice:s3cr%2Fet@proxy.corp:3128 refused; see https://docs.aws.amazon.com/x")
    assert "alice" not in text and "s3cr" not in text
    assert text == f"proxy http://{MASK}@proxy.corp:3128 refused; see https://docs.aws.amazon.com/x"


def test_known_secrets_are_masked_url_encoded_and_in_base64():
    import base64
    import urllib.parse

    redactor = Redactor.from_environment({"AWS_SECRET_ACCESS_KEY": SECRET_KEY, "HOME": "/nonexistent"})
    for form in (
        urllib.parse.quote(SECRET_KEY, safe=""),
        urllib.parse.quote(SECRET_KEY, safe="").replace("%2F", "%2f"),
        base64.b64encode(SECRET_KEY.encode()).decode(),
        base64.urlsafe_b64encode(SECRET_KEY.encode()).decode().rstrip("="),
    ):
        assert redactor.text(f"signed with {form} today") == f"signed with {MASK} today", form


def test_a_proxy_password_from_the_environment_is_masked_wherever_it_turns_up():
    import base64

    env = {"HTTPS_PROXY": "http://bob:pa%2Fss-w0rd@proxy:3128", "HOME": "/nonexistent"}
    redactor = Redactor.from_environment(env)
    basic = base64.b64encode(b"bob:pa/ss-w0rd").decode()
    text = redactor.text(f"decoded pa/ss-w0rd, encoded pa%2Fss-w0rd, header Authorization: Basic {basic}")
    assert "pa/ss-w0rd" not in text and "pa%2Fss-w0rd" not in text and basic not in text


def test_values_named_like_secrets_are_masked_as_the_pattern_masks_them_everywhere_in_the_text():
    """The named-value pass only tries the pattern around secret words (a long log mentions them rarely):
    on every arrangement of names, separators, quotes, line breaks and earlier masks, it masks exactly what
    the pattern's own `sub` over the whole text masks."""
    import random

    from agent import redact

    pieces = ["key", "Key", "TOKEN", "password", "passwd", "secret", "KeyError", "warning", "=", ":", " ", "\n",
              "\n\n", '"', "'", ",", ";", "}", "]", "[", "[redacted]", "-", ".", "_", "a1", "x.y", "api-key", "/",
              "é", "ſecret", "ß"]  # fmt: skip
    chooser = random.Random(20261201)
    texts = ["".join(chooser.choice(pieces) for _ in range(chooser.randint(1, 24))) for _ in range(20000)]
    texts.append("\n".join(f"epoch {i}: loss=0.{i} tokenizers={i} api_key = 'k{i}'" for i in range(2000)))
    for text in texts:
        assert redact._mask_named_values(text) == redact._NAMED_VALUE.sub(r"\1" + redact.MASK, text), repr(text)
