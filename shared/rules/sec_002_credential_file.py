import fnmatch

from shared.rules.base import RUN_LEVEL_CHECKS, Hit, Rule
from shared.secret_scan import credential_file_kind


class Sec002CredentialFile(Rule):
    id = "SEC-002"
    title = "Credential file among the artifacts"
    severity = "error"
    remediation = "Rotate what the file holds, delete the artifact (or the run), and keep credential files out of the artifact directory."
    checks = RUN_LEVEL_CHECKS
    params = {"extra_file_patterns": []}

    def evaluate(self, ctx, params):
        ev = ctx.evidence
        places = []
        if ev.run is not None and ev.run.found:
            places.append(("run artifacts", ev.run.artifacts))
        if ev.model_artifacts is not None:
            places.append(("model artifacts", ev.model_artifacts.files))
        for where, names in places:
            for name in names:
                # ``name`` is a path below the artifact root (``deploy/ssh/id_rsa``): a policy pattern
                # may match the whole path or the file's name
                base = name.rsplit("/", 1)[-1].lower()
                kind = credential_file_kind(name) or next(
                    (p for p in params["extra_file_patterns"] if not name.endswith("/")
                     and (fnmatch.fnmatchcase(name.lower(), p.lower()) or fnmatch.fnmatchcase(base, p.lower()))), None
                )
                if kind:
                    yield Hit(f"'{name}' in the {where} looks like a credential file (matches {kind}).",
                              {"location": f"{where}/{name}", "pattern": kind})
