"""A small Hugging Face hub on 127.0.0.1 for the tests: serves folders as model repositories
through the endpoints huggingface_hub's snapshot_download and hf_hub_download use.

    hub = FakeHub({"owner/name": Path("folder")})   # started on a free port
    env = {"HF_ENDPOINT": hub.url, ...}              # for a subprocess (huggingface_hub reads it at import)
    hub.close()

Endpoints: GET /api/models/{repo}[/revision/{rev}] (sha + siblings), HEAD and GET
/{repo}/resolve/{rev}/{path} (ETag, X-Repo-Commit, Content-Length, Range). Options per repo:
`gated` (answers 401 with the gated-repo error code), `cut_after` (bytes after which a file
download is cut off, to test interrupted downloads). Unknown repositories get 404 with the
repository-not-found error code. Every request is recorded in `hub.requests`.
"""
from __future__ import annotations

import hashlib
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote

SHA = "0123456789abcdef0123456789abcdef01234567"


class FakeHub:
    def __init__(self, repos: dict[str, Path], *, gated: set[str] = frozenset(), cut_after: dict[str, int] | None = None):
        self.repos = {k: Path(v) for k, v in repos.items()}
        self.gated = set(gated)
        self.cut_after = dict(cut_after or {})
        self.requests: list[tuple[str, str]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _send(self, code, body=b"", headers=None, head=False):
                self.send_response(code)
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _error(self, code, error_code, msg, head=False):
                self._send(code, json.dumps({"error": msg}).encode(),
                           {"X-Error-Code": error_code, "X-Error-Message": msg, "Content-Type": "application/json"},
                           head)

            def _route(self, head):
                path = unquote(self.path.split("?")[0])
                hub.requests.append((self.command, path))
                if path.startswith("/api/models/"):
                    rest = path[len("/api/models/"):]
                    repo = rest.split("/revision/")[0].rstrip("/")
                    if repo.endswith("/tree/main"):
                        repo = repo[: -len("/tree/main")]
                    return self._api(repo, head)
                for repo in sorted(hub.repos, key=len, reverse=True) + sorted(hub.gated):
                    prefix = f"/{repo}/resolve/"
                    if path.startswith(prefix):
                        rev_file = path[len(prefix):]
                        _, _, fname = rev_file.partition("/")
                        return self._file(repo, fname, head)
                return self._error(404, "RepoNotFound", "Repository not found", head)

            def _api(self, repo, head):
                if repo in hub.gated:
                    return self._error(401, "GatedRepo", "Access to this repository is restricted", head)
                if repo not in hub.repos:
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                root = hub.repos[repo]
                files = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
                body = json.dumps({"id": repo, "modelId": repo, "sha": SHA, "private": False,
                                   "siblings": [{"rfilename": f} for f in files]}).encode()
                self._send(200, body, {"Content-Type": "application/json"}, head)

            def _file(self, repo, fname, head):
                if repo in hub.gated:
                    return self._error(401, "GatedRepo", "Access to this repository is restricted", head)
                if repo not in hub.repos:
                    return self._error(404, "RepoNotFound", "Repository not found", head)
                f = hub.repos[repo] / fname
                if not f.is_file():
                    return self._error(404, "EntryNotFound", "Entry not found", head)
                data = f.read_bytes()
                etag = '"' + hashlib.sha256(data).hexdigest() + '"'
                headers = {"ETag": etag, "X-Repo-Commit": SHA, "Content-Type": "application/octet-stream",
                           "Accept-Ranges": "bytes"}
                rng = self.headers.get("Range")
                start = 0
                if rng and rng.startswith("bytes="):
                    start = int(rng[len("bytes="):].split("-")[0] or 0)
                body = data[start:]
                cut = hub.cut_after.get(f"{repo}/{fname}")
                if cut is not None and not head:
                    # announce the whole file, send part of it, then drop the connection
                    self.send_response(206 if start else 200)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body[:cut])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if head:
                    return self._head_file(headers, len(data))
                self._send(206 if start else 200, body, headers)

            def _head_file(self, headers, size):
                self.send_response(200)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(size))
                self.end_headers()

            def do_GET(self):
                self._route(False)

            def do_HEAD(self):
                self._route(True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
