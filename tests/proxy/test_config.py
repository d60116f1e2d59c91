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
