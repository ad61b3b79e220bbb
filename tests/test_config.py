import pytest

from explorer import config
from explorer.errors import ExplorerInputError


def test_data_dir_precedence(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_DATA_DIR", str(tmp_path / "env"))
    assert config.data_dir(tmp_path / "explicit") == tmp_path / "explicit"
    assert config.data_dir() == tmp_path / "env"
    monkeypatch.delenv("EXPLORER_DATA_DIR")
    assert config.data_dir() in (config.REPO_ROOT.parent / "shared" / "data",
                                 config.Path.home() / ".explorer" / "data")


def test_data_file(tmp_path):
    (tmp_path / "present.csv.gz").write_bytes(b"")
    assert config.data_file("present.csv.gz", tmp_path) == tmp_path / "present.csv.gz"
    with pytest.raises(ExplorerInputError, match="EXPLORER_DATA_DIR"):
        config.data_file("absent.csv.gz", tmp_path)


def test_cache_dir_is_created_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("EXPLORER_CACHE_DIR", str(tmp_path / "a" / "b"))
    assert config.cache_dir() == tmp_path / "a" / "b"
    assert (tmp_path / "a" / "b").is_dir()
