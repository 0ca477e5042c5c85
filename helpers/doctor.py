"""Is this machine ready for the kit? One line per check: ✓, or ✗ with the fix.

Run it from a terminal (`python -m helpers doctor`: exit status 0 only when every check passes)
or from 00_start_here.ipynb (`doctor.run(brief=True)`). Each check looks at the real thing: the versions
importlib sees, the extension folders of the JupyterLab that will show the widgets, the kernel
spec Jupyter will pick, a live server, a file written in the data folder. When every check passes
the lines are the same on every machine (no paths, sizes, timings), so a notebook's saved output
holds. Only the standard library is imported up front: a broken environment still gets answers.
"""

from __future__ import annotations

import importlib.metadata as metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from helpers import config, redact
from helpers.errors import ServerUnreachable

ROOT = Path(__file__).resolve().parents[1]
KIT = "mlflow-400-lab"
WIDGETS_EXTENSION = "@jupyter-widgets/jupyterlab-manager"
CHECKS = ("python", "packages", "widgets", "kernel", "server", "data-dir", "disk")
DEFAULT_MIN_FREE_GB = 1.0
_SEE_PACKAGES = "install the pins first (the packages line says how)"
_PROBE_TIMEOUT = 60


@dataclass(frozen=True)
class Result:
    """One check's verdict. `fix` is empty when the message already says what to do."""

    check: str
    passed: bool
    message: str
    fix: str = ""

    def line(self) -> str:
        text = f"{'✓' if self.passed else '✗'} {self.check}: {self.message}"
        return f"{text} — fix: {self.fix}" if self.fix and not self.passed else text


def run(print_fn: Callable[[str], None] = print, *, checks: tuple[str, ...] | list[str] | None = None,
        keep_server: bool = True, min_free_gb: float = DEFAULT_MIN_FREE_GB, brief: bool = False) -> bool:
    """Run the checks in order, print one line each, return True when all passed.

    `keep_server=True` (the notebook's case) leaves a local server the doctor started running,
    so the next cell's `start_server()` reuses it; the command line stops it again.
    `brief=True` (00_start_here.ipynb) keeps a ready machine to one line: it prints only the failed
    checks' lines, or one line naming every check when all passed.
    """
    results = []
    say = (lambda _line: None) if brief else print_fn
    for name in checks or CHECKS:
        if name not in CHECKS:
            raise ValueError(f"unknown check {name!r}; the checks are: {', '.join(CHECKS)}")
        try:
            result = _RUNNERS[name](keep_server=keep_server, min_free_gb=min_free_gb)
        except Exception as exc:  # a check that breaks is a failed check, not a traceback wall
            result = Result(name, False, f"the check itself failed ({type(exc).__name__}: {exc})",
                            "report this to the instructor with the line above")
        say(result.line())
        results.append(result)
    passed = all(r.passed for r in results)
    if brief and passed:
        print_fn(f"✓ all {len(results)} checks passed: {', '.join(r.check for r in results)}")
    elif brief:
        for result in results:
            if not result.passed:
                print_fn(result.line())
    return passed


# -- the checks ------------------------------------------------------------------------------


def check_python(**_: object) -> Result:
    need = requires_python()
    if sys.flags.optimize:
        # MLflow validates requests with `assert`; so do parts of the kit. Under -O both vanish.
        how = (f"PYTHONOPTIMIZE={os.environ['PYTHONOPTIMIZE']}" if os.environ.get("PYTHONOPTIMIZE")
               else "-O")
        return Result("python", False, f"this Python runs optimized ({how}): `assert` statements "
                      "are skipped, so an MLflow server or kit check run this way lets bad "
                      "requests through (the kit's own server always starts without it)",
                      "unset PYTHONOPTIMIZE (and drop -O), then restart the kernel or command")
    if sys.version_info[:2] >= need:
        return Result("python", True, f"{need[0]}.{need[1]} or newer, as the kit needs")
    have = ".".join(map(str, sys.version_info[:3]))
    return Result("python", False, f"this is Python {have}; the kit needs {need[0]}.{need[1]} or newer",
                  f"install Python {need[0]}.{need[1]}+ (python.org or your package manager), then "
                  "run `make lab` with it")


def check_packages(**_: object) -> Result:
    wanted = pins()
    problems = []
    for name, pinned in wanted.items():
        try:
            have = metadata.version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name} is not installed")
            continue
        if have != pinned:
            problems.append(f"{name} {have} is installed, the kit pins {pinned}")
            continue
        shadow = _shadowed(name)
        if shadow:
            problems.append(f"{name} {have} is installed, but `import` finds another copy first "
                            f"({shadow}; PYTHONPATH?)")
    if not problems:
        listed = ", ".join(f"{n} {v}" for n, v in wanted.items())
        return Result("packages", True, f"{listed}, as pinned")
    elsewhere = _outside_venv()
    if elsewhere:
        return Result("packages", False, f"this is {sys.executable}, not the kit's environment, so "
                      f"the kit's packages are not here ({'; '.join(problems)})",
                      f"run `{elsewhere} -m helpers doctor` in the kit's folder (`make lab` "
                      "creates it if it is missing)")
    return Result("packages", False, "; ".join(problems), _install_fix())


def _shadowed(name: str) -> str | None:
    """Where Python imports a distribution's top-level package from, when that is not the
    installed distribution's folder (a copy on PYTHONPATH or in the current folder shadows it).
    Found with importlib's own lookup, without importing anything."""
    from importlib.util import find_spec

    dist = metadata.distribution(name)
    home = Path(os.path.abspath(dist.locate_file("")))
    tops = (dist.read_text("top_level.txt") or name.replace("-", "_")).split()
    for top in tops:
        try:
            spec = find_spec(top)
        except (ImportError, ValueError):
            continue
        where = spec.origin if spec and spec.origin not in (None, "built-in", "frozen") else None
        # compared as written and with links resolved: an environment may link its packages
        if where and not (Path(os.path.abspath(where)).is_relative_to(home)
                          or Path(where).resolve().is_relative_to(home.resolve())):
            return str(Path(where).parent)
    return None


def _outside_venv() -> str | None:
    """The kit's own Python (as the learner types it) when this is another one and .venv exists."""
    venv = ROOT / ".venv"
    if venv.is_dir() and Path(sys.prefix).resolve() != venv.resolve():
        return r".venv\Scripts\python" if os.name == "nt" else ".venv/bin/python"
    return None


def check_widgets(**_: object) -> Result:
    python, which = _lab_python()
    found = _probe(python, _LAB_PROBE)
    if found is None:
        return Result("widgets", False, f"could not run the Python of {which} ({python})",
                      "start JupyterLab with `make lab` (or `python -m helpers lab`)")
    if not found.get("jupyterlab"):
        return Result("widgets", False, f"JupyterLab is not installed with {python}",
                      _SEE_PACKAGES if python == sys.executable else _install_fix())
    manager = found.get("manager")
    if not manager:
        return Result("widgets", False,
                      f"{which} has no ipywidgets extension ({WIDGETS_EXTENSION}): widgets will "
                      "not display", "install the pins in that JupyterLab's environment "
                      "(`make lab`), or start JupyterLab with `python -m helpers lab`")
    if found.get("disabled"):
        return Result("widgets", False, f"{WIDGETS_EXTENSION} is disabled in {which}: widgets will "
                      f"not display", f"run `jupyter labextension enable {WIDGETS_EXTENSION}` "
                      "(and `jupyter labextension unlock` it if it is locked), then reload the page")
    kernel_side = _major(_installed("ipywidgets"))
    if kernel_side is not None and kernel_side >= 8 and (_major(manager) or 0) < 5:
        return Result("widgets", False, f"{which} has {WIDGETS_EXTENSION} {manager}, which cannot "
                      "show ipywidgets 8 widgets (it needs 5.x)",
                      "install jupyterlab_widgets 3.x in that JupyterLab's environment (`make lab`)")
    return Result("widgets", True, f"JupyterLab has the ipywidgets extension ({WIDGETS_EXTENSION})")


def check_kernel(**_: object) -> Result:
    if _in_kernel():
        python, spec_dir = sys.executable, None
    else:
        try:
            python, spec_dir = _kernel_python()
        except ImportError:
            return Result("kernel", False, "Jupyter is not installed in this environment",
                          _SEE_PACKAGES)
        except LookupError as exc:
            return Result("kernel", False, str(exc), "run `make lab`: it installs the kit's kernel")
    found = _probe(python, _KIT_PROBE)
    where = f" (kernel spec in {spec_dir})" if spec_dir else ""
    if found is None:
        return Result("kernel", False, f"the notebooks' python3 kernel runs {python}, which does "
                      f"not start{where}", _kernel_fix(spec_dir))
    if not found.get("kit"):
        return Result("kernel", False, f"the notebooks' python3 kernel runs {python}, where the "
                      f"kit is not installed{where}", _kernel_fix(spec_dir))
    origin = found.get("helpers")
    if not origin or Path(origin).resolve().parent != ROOT / "helpers":
        return Result("kernel", False, f"the notebooks' python3 kernel uses the kit from another "
                      f"folder ({origin}){where}", _kernel_fix(spec_dir))
    return Result("kernel", True, "the notebooks' python3 kernel runs in the kit's environment")


def check_server(*, keep_server: bool = True, **_: object) -> Result:
    try:
        from helpers import server, wire
        from helpers.errors import KitError
    except ImportError as exc:
        return Result("server", False, f"cannot start one: {exc.name} is not installed",
                      _SEE_PACKAGES)
    external = config.external_tracking_uri()
    if external:
        return _check_shared(external, wire)
    try:
        handle = server.start_server(progress=lambda _: None)
    except KitError as exc:
        return Result("server", False, f"the local MLflow server did not start: "
                      f"{redact.mask_text(str(exc).splitlines()[0])}")
    try:
        answer = wire.send("/api/2.0/mlflow/experiments/search", method="GET",
                           params={"max_results": 1}, base_url=handle.url)
        if answer.status != 200:
            return Result("server", False, f"the local server answers {answer.status} "
                          f"{answer.reason} to a simple search", "stop it with `python -m helpers "
                          "stop` and try again; the log is in the kit's data folder")
        return Result("server", True, f"a local MLflow {handle.mlflow_version} server answers"
                      + proxy_line(handle.url))
    except KitError as exc:
        return Result("server", False, redact.mask_text(str(exc)) + proxy_line(handle.url))
    finally:
        if not keep_server:
            handle.stop()


def check_data_dir(**_: object) -> Result:
    home = config.data_dir()
    try:
        home.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=home, prefix=".doctor-") as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return Result("data-dir", False, f"cannot write in {home} ({exc.strerror or exc})",
                      f"set {config.HOME_ENV} to a folder you can write, e.g. "
                      f"`export {config.HOME_ENV}=$HOME/mlflow-400-lab-data`")
    return Result("data-dir", True, "the kit's data folder is writable")


def check_disk(*, min_free_gb: float = DEFAULT_MIN_FREE_GB, **_: object) -> Result:
    place = config.data_dir()
    while not place.exists() and place != place.parent:
        place = place.parent
    free_gb = shutil.disk_usage(place).free / 1e9
    if free_gb >= min_free_gb:
        return Result("disk", True, f"more than {min_free_gb:g} GB free")
    return Result("disk", False, f"only {free_gb:.1f} GB free where the kit keeps its data "
                  f"({place}); it wants {min_free_gb:g} GB",
                  f"free some space, or set {config.HOME_ENV} to a folder on a disk with room")


_RUNNERS: dict[str, Callable[..., Result]] = {
    "python": check_python, "packages": check_packages, "widgets": check_widgets,
    "kernel": check_kernel, "server": check_server, "data-dir": check_data_dir, "disk": check_disk,
}


# -- pins ------------------------------------------------------------------------------------


def pins() -> dict[str, str]:
    """name → version of the kit's runtime pins: pyproject.toml, else the installed kit's metadata."""
    text = _pyproject()
    if text is not None:
        deps = _pyproject_field(text, "dependencies")
    else:
        deps = [r for r in (metadata.requires(KIT) or []) if "extra ==" not in r]
    found = {}
    for dep in deps:
        match = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?\s*==\s*([^\s;]+)\s*(?:;.*)?", dep)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def requires_python() -> tuple[int, int]:
    """The lowest Python the kit supports, from `requires-python = ">=3.X"`."""
    text = _pyproject()
    spec = _pyproject_field(text, "requires-python") if text else None
    match = re.search(r">=\s*(\d+)\.(\d+)", spec or "")
    return (int(match.group(1)), int(match.group(2))) if match else (3, 10)


def _pyproject() -> str | None:
    try:
        return (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    except OSError:
        return None  # installed without its source folder: fall back to the metadata


def _pyproject_field(text: str, key: str):
    """`[project]`'s `key`: tomllib where it exists (3.11+), else a reader for the two simple forms
    the kit's pyproject uses (a string, and an array of strings)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        return _read_simple_toml(text, key)
    return tomllib.loads(text).get("project", {}).get(key)


def _read_simple_toml(text: str, key: str):
    section = re.search(r"^\[project\]\s*$(.*?)(?=^\[|\Z)", text, flags=re.M | re.S)
    body = section.group(1) if section else ""
    array = re.search(rf"^{re.escape(key)}\s*=\s*\[(.*?)\]", body, flags=re.M | re.S)
    if array:
        lines = [line.split("#", 1)[0] for line in array.group(1).splitlines()]
        return re.findall(r'"([^"]*)"', "\n".join(lines))
    scalar = re.search(rf'^{re.escape(key)}\s*=\s*"([^"]*)"', body, flags=re.M)
    return scalar.group(1) if scalar else None


# -- where JupyterLab and the kernel run -------------------------------------------------------


_LAB_PROBE = """
import json
out = {"jupyterlab": None, "manager": None, "disabled": False}
try:
    import jupyterlab
    out["jupyterlab"] = jupyterlab.__version__
    from jupyter_core.paths import jupyter_path
    from jupyterlab_server.config import get_federated_extensions, get_static_page_config
    name = "@jupyter-widgets/jupyterlab-manager"
    ext = get_federated_extensions(jupyter_path("labextensions")).get(name)
    out["manager"] = ext["version"] if ext else None
    off = get_static_page_config(level="all").get("disabledExtensions") or {}
    out["disabled"] = bool(off.get(name) if isinstance(off, dict) else name in off)
except Exception as exc:
    out["error"] = type(exc).__name__ + ": " + str(exc)
print(json.dumps(out))
"""

_KIT_PROBE = """
import importlib.metadata as m, importlib.util as u, json, sys
out = {"prefix": sys.prefix, "kit": None, "helpers": None}
try:
    out["kit"] = m.version("mlflow-400-lab")
except m.PackageNotFoundError:
    pass
spec = u.find_spec("helpers")
out["helpers"] = spec.origin if spec else None
print(json.dumps(out))
"""


def _probe(python: str, code: str) -> dict | None:
    """Run `code` with another Python, outside the kit's folder, and read its one JSON line."""
    try:
        done = subprocess.run([python, "-c", code], capture_output=True, text=True,
                              timeout=_PROBE_TIMEOUT, cwd=tempfile.gettempdir(),
                              stdin=subprocess.DEVNULL)
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _in_kernel() -> bool:
    ipython = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()
    return getattr(ipython, "kernel", None) is not None


def _lab_python() -> tuple[str, str]:
    """The Python of the JupyterLab that will show the widgets, and how to name it."""
    if _in_kernel():
        parent = _jupyter_server_python()
        if parent:
            return parent, "the JupyterLab running this notebook"
    return sys.executable, "the JupyterLab in this Python environment"


def _jupyter_server_python() -> str | None:
    """The Python running the Jupyter server that started this kernel, if there is one."""
    try:
        import psutil

        for proc in psutil.Process().parents():
            cmd = proc.cmdline()
            names = [Path(part).name.lower() for part in cmd]
            launched = any(re.match(r"jupyter-(lab|server|notebook)\b", n) for n in names) or any(
                a == "-m" and b in ("jupyter", "jupyterlab", "jupyter_server", "notebook")
                for a, b in zip(cmd, cmd[1:]))
            if launched:
                first = cmd[0] if cmd else ""
                return first if Path(first).name.lower().startswith("python") and \
                    Path(first).is_absolute() else proc.exe()
    except Exception:  # psutil missing or a process we may not inspect: use the default
        return None
    return None


def _kernel_python() -> tuple[str, str]:
    """The Python Jupyter starts for the notebooks' kernel (`python3`), and its spec folder."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    try:
        spec = KernelSpecManager().get_kernel_spec("python3")
    except NoSuchKernel:
        raise LookupError("Jupyter has no python3 kernel here") from None
    first = spec.argv[0] if spec.argv else ""
    # jupyter_client/manager.py runs a bare "python"/"pythonX"/"pythonX.Y" as the server's own
    # Python, which for `make lab` is this one.
    same = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    return (sys.executable if first in same else first), spec.resource_dir


def _kernel_fix(spec_dir: str | None) -> str:
    own = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3"
    if spec_dir and Path(spec_dir).resolve() != own.resolve():
        return ("that kernel spec shadows the kit's own: remove it with `jupyter kernelspec remove "
                "python3`, or start JupyterLab with `make lab`")
    return "open the notebooks with `make lab`, or install the kit in that Python (`pip install -e .`)"


def _install_fix() -> str:
    python = _outside_venv()
    if python:
        return (f"this is not the kit's environment: run `{python} -m helpers doctor` in the kit's "
                "folder, or `make lab`")
    return ("run `make lab` in the kit's folder (it installs the pins), or `pip install -e .`; "
            "offline: see docs/instructor.md (wheelhouse)")


def _installed(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _major(version: str | None) -> int | None:
    match = re.match(r"(\d+)", version or "")
    return int(match.group(1)) if match else None


def _check_shared(external: str, wire) -> Result:
    """MLFLOW_TRACKING_URI names a shared server: reachable, accepted, which MLflow version."""
    shown = redact.mask_url(external)
    try:
        answer = wire.send("/api/2.0/mlflow/experiments/search", method="GET",
                           params={"max_results": 1}, base_url=external)
        version = wire.send("/version", method="GET", base_url=external)
    except ServerUnreachable:
        origin, back = config.tracking_origin()
        return Result("server", False, f"{origin} is {shown}, but no server answers "
                      f"there{config.userinfo_note(external)}{proxy_line(external)}",
                      f"`python -m helpers doctor --room` says what is in the way; or {back} to "
                      "use the kit's own local server")
    if answer.status == 401:
        have = answer.request.header("Authorization")
        return Result("server", False, f"the shared server at {shown} "
                      + ("refuses the user name and password given" if have
                         else "asks for a user name and password"),
                      f"run `python -m helpers join {shown} --basic-auth` and type the name and "
                      "password the instructor gives you")
    if answer.status == 403 and answer.text.startswith("Invalid Host header"):
        return Result("server", False, f"the shared server refuses requests addressed to "
                      f"{shown} (not in its --allowed-hosts)", "use the address the instructor "
                      "gave, or ask them to add this one with --allowed-hosts")
    if answer.status != 200:
        return Result("server", False, f"the shared server at {shown} answers {answer.status} "
                      f"{answer.reason} to a simple search", "tell the instructor")
    seen = version.text.strip() if version.status == 200 else "an unknown version"
    if seen != config.PINNED_MLFLOW:
        return Result("server", False, f"the shared server at {shown} runs MLflow {seen}, not the "
                      f"pinned {config.PINNED_MLFLOW}: answers may differ from the notebooks' saved "
                      "outputs", f"ask the instructor to run mlflow=={config.PINNED_MLFLOW}")
    return Result("server", True, f"the shared server at {shown} answers, MLflow {seen} as pinned"
                  + proxy_line(external))


_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def proxy_settings() -> list[str]:
    """The proxy variables set in this environment, as `NAME=value` with credentials masked."""
    return [f"{name}={redact.mask_url(os.environ[name])}" for name in _PROXY_VARS
            if os.environ.get(name)]


def proxy_line(url: str) -> str:
    """What the proxy settings mean for plain `requests` calls to `url`, as `requests` itself
    decides (requests.utils.get_environ_proxies, which reads NO_PROXY too); empty without any."""
    found = proxy_settings()
    if not found:
        return ""
    host = urlsplit(url).hostname or url
    try:
        from requests.utils import get_environ_proxies
    except ImportError:
        return f" (proxy set: {', '.join(found)}; requests is not installed to tell more)"
    if not get_environ_proxies(url):
        return (f" (proxy set: {', '.join(found)}; requests to {host} go direct: it is in "
                "NO_PROXY, which the kit sets when it is imported)")
    return (f" (requests to {host} go through the proxy: {', '.join(found)}; if they fail, add "
            f"{host} to NO_PROXY, or join the room with `python -m helpers join URL`)")
