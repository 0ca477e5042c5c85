# JupyterHub configuration of the kit's one-machine workshop room.
#
# Started by `python -m helpers hub --roster FILE` (helpers/hub.py), which writes the settings this
# file reads (a JSON file named by $MLFLOW_400_LAB_HUB_SETTINGS, no secret in it), after it has
# started the room's MLflow server and made one system user per roster name. Read it to see what
# the room is; run it through that command, not by hand.
#
# - Authenticator: PAM (JupyterHub's default), limited to the roster: a learner logs in with their
#   name and the password of their MLflow account, which the hub command gave their system user.
# - Spawner: LocalProcessSpawner: each learner's Jupyter server runs as their own Unix user, in
#   ~/mlflow-400-lab (their own copy of the lessons), and opens notebooks/00_start_here.ipynb.
# - Every kernel inherits MLFLOW_TRACKING_URI (the room's server, on 127.0.0.1) and the learner's
#   own MLFLOW_TRACKING_USERNAME / MLFLOW_TRACKING_PASSWORD, read here from the room's 0600
#   credentials file at each spawn: nobody types a password into a notebook.
# - Everything listens on 127.0.0.1 except the proxy's public port (--host, 127.0.0.1 by default).
import json
import os
from pathlib import Path

from helpers.classroom import read_credentials

c = get_config()  # noqa: F821 - JupyterHub's config loader defines it
settings = json.loads(Path(os.environ["MLFLOW_400_LAB_HUB_SETTINGS"]).read_text())
home = Path(settings["home"])

c.JupyterHub.ip = settings["host"]
c.JupyterHub.port = settings["port"]
c.JupyterHub.hub_ip = "127.0.0.1"
c.JupyterHub.hub_port = settings["hub_port"]
c.JupyterHub.db_url = f"sqlite:///{home / 'jupyterhub.sqlite'}"
c.JupyterHub.cookie_secret_file = str(home / "jupyterhub_cookie_secret")
c.JupyterHub.cleanup_servers = True  # stopping the Hub stops every learner's server
c.JupyterHub.cleanup_proxy = True
c.JupyterHub.log_level = "INFO"

# The proxy: configurable-http-proxy from classroom/package.json, in classroom/node_modules.
c.ConfigurableHTTPProxy.command = [settings["proxy"]]
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{settings['proxy_api_port']}"

c.JupyterHub.authenticator_class = "pam"
c.Authenticator.allowed_users = set(settings["users"])
c.PAMAuthenticator.open_sessions = False  # no login session (utmp, systemd-logind) per learner

c.JupyterHub.spawner_class = "localprocess"
c.Spawner.cmd = settings["singleuser"]
c.Spawner.notebook_dir = settings["notebook_dir"]
c.Spawner.default_url = settings["default_url"]
# A busy two-core machine starting a room's servers at once: give each time to import.
c.Spawner.start_timeout = 180
c.Spawner.http_timeout = 180
# JupyterLab without the "official Jupyter news?" prompt or an update check, as `make lab` runs it.
c.Spawner.args = [f"--LabApp.app_settings_dir={settings['lab_settings']}"]
c.Spawner.environment = {"MLFLOW_TRACKING_URI": settings["mlflow_url"]}


def learner_account(spawner):
    """The learner's own MLflow account, from the credentials file, into their server's env."""
    name = spawner.user.name
    password = read_credentials(Path(settings["credentials"])).get(name)
    if password is None:
        raise RuntimeError(f"{name} has no line in the room's credentials file")
    spawner.environment = {**spawner.environment, "MLFLOW_TRACKING_USERNAME": name,
                           "MLFLOW_TRACKING_PASSWORD": password, "MLFLOW_400_LAB_LEARNER": name}


c.Spawner.pre_spawn_hook = learner_account
