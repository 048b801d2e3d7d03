"""The data directory's file names are the store's (``app/paths.py`` keeps its own copies so
that the CLI need not load the crypto to find them)."""

from peerline.app import paths
from peerline.store.config import CONFIG_FILE_NAME
from peerline.store.keyfile import KEY_FILE_NAME


def test_the_cli_and_the_store_name_the_same_files() -> None:
    assert paths.KEY_FILE_NAME == KEY_FILE_NAME
    assert paths.CONFIG_FILE_NAME == CONFIG_FILE_NAME
