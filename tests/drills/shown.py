"""What ``descent show`` prints for a run, read through the real api on the drill's database."""

from __future__ import annotations

import argparse
import uuid

from fastapi.testclient import TestClient

from api.app import create_app
from descent.client import Client
from descent.commands.show import show, show_arguments
from tests.identity import TEST_HOSTS, admin_token


def shown(settings, sessions, experiment_id: int, capsys) -> str:
    app = create_app(settings.model_copy(update={"allowed_hosts": TEST_HOSTS}), session_factory=sessions,
                     enqueuer=lambda *a: None, reconcile_interval_s=0, broker_check=lambda: None)
    parser = argparse.ArgumentParser()
    show_arguments(parser)
    with TestClient(app) as http, Client("http://testserver", admin_token(sessions, f"admin-{uuid.uuid4().hex}"),
                                         transport=http._transport) as client:
        capsys.readouterr()
        assert show(client, parser.parse_args([str(experiment_id)])) == 0
    return capsys.readouterr().out
