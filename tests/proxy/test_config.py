import pytest

from proxy.config import ConfigError, ProxyConfig, load_config


def test_defaults_need_only_the_endpoint_name():
    assert load_config({"SAGEMAKER_ENDPOINT_NAME": "image-classifier-dev"}) == ProxyConfig(
        endpoint_name="image-classifier-dev",
        max_image_bytes=3 * 1024 * 1024,
        review_threshold=0.93,
        log_level="INFO",
        max_attempts=4,
        read_timeout=20.0,
        connect_timeout=1.0,
    )


def test_every_variable_is_read():
    config = load_config(
        {
            "SAGEMAKER_ENDPOINT_NAME": "ep-1",
            "MAX_IMAGE_BYTES": "1048576",
            "REVIEW_THRESHOLD": "0.5",
            "LOG_LEVEL": "debug",
            "SAGEMAKER_MAX_ATTEMPTS": "2",
            "SAGEMAKER_READ_TIMEOUT_SECONDS": "8.5",
            "SAGEMAKER_CONNECT_TIMEOUT_SECONDS": "1",
        }
    )
    assert config == ProxyConfig("ep-1", 1048576, 0.5, "DEBUG", 2, 8.5, 1.0)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SAGEMAKER_ENDPOINT_NAME", ""),
        ("SAGEMAKER_ENDPOINT_NAME", "has spaces"),
        ("SAGEMAKER_ENDPOINT_NAME", "x" * 64),
        ("MAX_IMAGE_BYTES", "3MB"),
        ("MAX_IMAGE_BYTES", "0"),
        ("MAX_IMAGE_BYTES", str(5 * 1024 * 1024)),
        ("REVIEW_THRESHOLD", "high"),
        ("REVIEW_THRESHOLD", "1.5"),
        ("REVIEW_THRESHOLD", "nan"),
        ("LOG_LEVEL", "LOUD"),
        ("SAGEMAKER_MAX_ATTEMPTS", "0"),
        ("SAGEMAKER_READ_TIMEOUT_SECONDS", "-1"),
        ("SAGEMAKER_CONNECT_TIMEOUT_SECONDS", "inf"),
    ],
)
def test_a_bad_value_is_refused_naming_the_variable(variable, value):
    environ = {"SAGEMAKER_ENDPOINT_NAME": "ep", variable: value}
    with pytest.raises(ConfigError, match=variable):
        load_config(environ)


def test_a_missing_endpoint_name_says_what_to_set():
    with pytest.raises(ConfigError, match="SAGEMAKER_ENDPOINT_NAME is required"):
        load_config({})


SECRET = "Zq3v9Xb1LkP0sW7tYc2NfR8mHd5GjA4eUo6iTx_-"


def test_access_is_off_by_default():
    config = load_config({"SAGEMAKER_ENDPOINT_NAME": "ep"})
    assert (config.origin_secret, config.api_keys_path, config.api_keys_file) == (None, None, None)
    assert config.origin_check is False
    assert config.api_keys is False
    assert config.api_keys_cache_seconds == 30.0


def test_access_variables_are_read():
    config = load_config(
        {
            "SAGEMAKER_ENDPOINT_NAME": "ep",
            "ORIGIN_SECRET": f" {SECRET}\n",
            "API_KEYS_PATH": "/image-classifier-dev/api-keys",
            "API_KEYS_CACHE_SECONDS": "5",
        }
    )
    assert config.origin_secret == SECRET
    assert config.origin_check is True
    assert (config.api_keys_path, config.api_keys, config.api_keys_cache_seconds) == (
        "/image-classifier-dev/api-keys",
        True,
        5.0,
    )
    local = load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "API_KEYS_FILE": "build/api-keys.json"})
    assert (local.api_keys_file, local.api_keys) == ("build/api-keys.json", True)


def test_the_secret_is_not_in_the_configs_repr():
    config = load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "ORIGIN_SECRET": SECRET})
    assert SECRET not in repr(config)
    assert SECRET not in str(config)


PREVIOUS = "pR3v10usS3cretOfTheLastRotationXy7-_"


def test_the_previous_secret_of_a_rotation_is_read_and_never_shown():
    config = load_config(
        {
            "SAGEMAKER_ENDPOINT_NAME": "ep",
            "ORIGIN_SECRET": SECRET,
            "ORIGIN_SECRET_PREVIOUS": PREVIOUS,
        }
    )
    assert config.origin_secrets == (SECRET, PREVIOUS)
    assert PREVIOUS not in repr(config)
    alone = load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "ORIGIN_SECRET": SECRET})
    assert alone.origin_secrets == (SECRET,)


def test_a_previous_secret_without_a_current_one_is_refused():
    with pytest.raises(
        ConfigError, match=r"^ORIGIN_SECRET_PREVIOUS is set but ORIGIN_SECRET is not"
    ):
        load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "ORIGIN_SECRET_PREVIOUS": PREVIOUS})


def test_a_bad_previous_secret_is_refused_by_its_name_without_quoting_it():
    with pytest.raises(ConfigError, match=r"^ORIGIN_SECRET_PREVIOUS has 5 characters") as error:
        load_config(
            {
                "SAGEMAKER_ENDPOINT_NAME": "ep",
                "ORIGIN_SECRET": SECRET,
                "ORIGIN_SECRET_PREVIOUS": "t1ny!",
            }
        )
    assert "t1ny!" not in str(error.value)


@pytest.mark.parametrize(
    "value",
    [
        "short-secret",
        "x" * 257,
        "has a space in the middle of a long enough value",
        "nön-ascii-secret-that-is-long-enough-to-pass",
    ],
)
def test_a_bad_origin_secret_is_refused_without_quoting_it(value):
    with pytest.raises(ConfigError, match=r"^ORIGIN_SECRET") as error:
        load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "ORIGIN_SECRET": value})
    assert value not in str(error.value)
    assert value[:8] not in str(error.value)


@pytest.mark.parametrize(
    "path",
    [
        "image-classifier-dev/api-keys",
        "/image-classifier-dev/api-keys/",
        "/with space/api-keys",
        "/aws/api-keys",
        "/SSM-things/api-keys",
        "/" + "/".join(["a"] * 15),
        "/" + "a" * 1000,
    ],
)
def test_a_bad_api_keys_path_is_refused(path):
    with pytest.raises(ConfigError, match=r"^API_KEYS_PATH"):
        load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "API_KEYS_PATH": path})


def test_keys_come_from_ssm_or_a_file_not_both():
    with pytest.raises(ConfigError, match="API_KEYS_PATH and API_KEYS_FILE"):
        load_config(
            {
                "SAGEMAKER_ENDPOINT_NAME": "ep",
                "API_KEYS_PATH": "/ep/api-keys",
                "API_KEYS_FILE": "keys.json",
            }
        )


@pytest.mark.parametrize("value", ["0", "0.5", "31", "60", "soon"])
def test_the_key_cache_lasts_1_to_30_seconds(value):
    """At most 30 s: docs/api.md#revocation-delay holds (a failing store doubles it)."""
    with pytest.raises(ConfigError, match=r"^API_KEYS_CACHE_SECONDS"):
        load_config({"SAGEMAKER_ENDPOINT_NAME": "ep", "API_KEYS_CACHE_SECONDS": value})
