from pathlib import Path

import pytest

from modelgrid.layer_settings import KnowledgeSettings, LayerSettings
from modelgrid.review.config import GuardSettings, PolicySettings, ReviewSettings
from modelgrid.routing.auto import AutoSettings
from modelgrid.settings import (
    DEFAULT_MODEL_ID,
    LlamaCppSettings,
    ModelSettings,
    OpenAISettings,
    PlanSettings,
    Settings,
    SettingsError,
    load_settings,
)


def test_defaults_serve_the_embedded_model_from_sqlite_in_data_dir() -> None:
    settings = load_settings(env={})
    assert list(settings.models) == [DEFAULT_MODEL_ID]
    assert settings.port == 8000
    assert settings.resolved_database_url.endswith(".modelgrid/modelgrid.db")


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("port = 9000\n[models.m]\nn_ctx = 512\n")
    settings = load_settings(
        config,
        env={
            "MODELGRID_PORT": "9100",
            "MODELGRID_MODELS__M__N_CTX": "4096",
            "MODELGRID_URL": "http://client.setting",
            "OTHER": "x",
        },
    )
    assert settings.port == 9100
    deployment = settings.models["m"].deployments[0]
    assert isinstance(deployment, LlamaCppSettings) and deployment.n_ctx == 4096


def test_config_path_can_come_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('host = "0.0.0.0"\n')
    assert load_settings(env={"MODELGRID_CONFIG": str(config)}).host == "0.0.0.0"


def test_command_line_overrides_win_and_none_means_unset() -> None:
    settings = load_settings(env={"MODELGRID_PORT": "9100"}, overrides={"port": 1, "host": None})
    assert settings.port == 1
    assert settings.host == "127.0.0.1"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'x'", "port"),
        ("unknown_key = 1", "unknown_key"),
        ("port = ", "not valid TOML"),
    ],
)
def test_bad_config_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(text)
    with pytest.raises(SettingsError, match=message):
        load_settings(config, env={})


def test_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml", env={})


def test_example_config_documents_every_key() -> None:
    example = (Path(__file__).parent.parent / "modelgrid.example.toml").read_text()
    settings = load_settings(Path(__file__).parent.parent / "modelgrid.example.toml", env={})
    assert settings.models
    documented = set(Settings.model_fields) - {"models", "plans"} | set(ModelSettings.model_fields)
    documented |= set(LlamaCppSettings.model_fields) | set(OpenAISettings.model_fields)
    documented |= set(PlanSettings.model_fields)
    documented |= set(ReviewSettings.model_fields) | set(PolicySettings.model_fields)
    documented |= set(GuardSettings.model_fields) | set(LayerSettings.model_fields)
    documented |= set(KnowledgeSettings.model_fields) | set(AutoSettings.model_fields)
    documented -= {"review", "policies", "guard", "layers", "knowledge", "auto"}  # tables
    assert "[review]" in example and "[review.guard]" in example and "[layers." in example
    assert "[knowledge]" in example and "[auto." in example
    assert "[review.policies." in example
    for key in documented - {"deployments"}:
        assert f"{key} =" in example or f"# {key} =" in example, (
            f"modelgrid.example.toml does not document {key!r}"
        )


def test_built_in_plans_and_the_operators_own() -> None:
    settings = load_settings(env={"MODELGRID_PLANS__FREE__REQUESTS_PER_MINUTE": "5"})
    plans = settings.all_plans
    assert set(plans) >= {"free", "pro", "enterprise"}
    assert plans["free"].requests_per_minute == 5 and plans["pro"].requests_per_minute == 600
    assert plans["enterprise"].allows("anything")
    assert not PlanSettings(models=["a"]).allows("b")
    with pytest.raises(SettingsError, match="default_plan"):
        load_settings(env={"MODELGRID_DEFAULT_PLAN": "gold"})


def test_the_guard_is_a_model_of_the_catalogue(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('[review.guard]\nmodel = "guard"\n')
    with pytest.raises(SettingsError, match=r"review\.guard\.model: no model 'guard'"):
        load_settings(config, env={})
    config.write_text('[review.guard]\nbase_url = "http://127.0.0.1:1/v1"\nmodel = "g"\n')
    with pytest.raises(SettingsError, match="now a model's"):
        load_settings(config, env={})
    config.write_text(
        '[review.guard]\nmodel = "guard"\n'
        '[models.guard]\nengine = "openai"\nbase_url = "http://127.0.0.1:1/v1"\n'
    )
    assert load_settings(config, env={}).review.guard.model == "guard"


@pytest.mark.parametrize("url", ["127.0.0.1:8000/v1", "/v1", "ftp://host/v1", "http://[::1/v1"])
def test_an_upstream_base_url_is_an_absolute_http_url(tmp_path: Path, url: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f'[models.m]\nengine = "openai"\nbase_url = "{url}"\n')
    with pytest.raises(SettingsError, match="base_url"):
        load_settings(config, env={})
