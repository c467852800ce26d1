"""A labelled corpus for credential detection (issue 14): secrets of every kind shared/secret_scan.py
claims, and look-alikes that are not secrets. Generated deterministically (one seeded
``random.Random``) in each format's alphabet, length and layout; none is a real credential.

Formats follow the vendors' published token formats (e.g. GitHub "Behind GitHub's new
authentication token formats", GitLab "Token overview: prefixes", Slack "Token types", AWS IAM
"Unique identifiers", Azure Storage "Configure a connection string" and "Create a service SAS",
Microsoft Entra client-secret format ``...Q~...``, OpenAI keys carrying ``T3BlbkFJ`` (base64 of
"OpenAI"), Anthropic ``sk-ant-api03-``, Hugging Face ``hf_``, PKCS#12 DER ``30 82 .. .. 02 01 03``).

``Sample.value`` is what a param/tag/description holds; ``name`` the param/tag key when the
sample is a key/value pair; ``secret`` the part that must never be shown; ``kinds`` the kinds a
detector of shared/secret_scan.py may report for it (empty for look-alikes).
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass, field

SEED = 14
PER_KIND = 12


@dataclass(frozen=True)
class Sample:
    label: str  # the kind (secrets) or the look-alike's category
    value: str
    name: str | None = None
    secret: str = ""
    kinds: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_secret(self) -> bool:
        return bool(self.kinds)


class _Gen:
    def __init__(self, seed: int):
        self.r = random.Random(seed)

    def s(self, alphabet: str, n: int) -> str:
        return "".join(self.r.choice(alphabet) for _ in range(n))

    def hex(self, n: int) -> str:
        return self.s("0123456789abcdef", n)

    def alnum(self, n: int) -> str:
        return self.s(string.ascii_letters + string.digits, n)

    def bytes(self, n: int) -> bytes:
        return bytes(self.r.randrange(256) for _ in range(n))

    def b64(self, n_bytes: int) -> str:
        return base64.b64encode(self.bytes(n_bytes)).decode()

    def b64url(self, n_bytes: int) -> str:
        return base64.urlsafe_b64encode(self.bytes(n_bytes)).rstrip(b"=").decode()

    def uuid(self) -> str:
        h = self.hex(32)
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"

    def word(self) -> str:
        return self.r.choice(["churn", "fraud", "lake", "scoring", "prod", "ml", "vision", "ranker", "etl", "feature"])

    def password(self) -> str:
        # URL-safe (no @ : / ? #) so it can sit in a URL's user info and in connection strings
        return self.s(string.ascii_letters, 4) + self.s(string.digits, 3) + self.s("-_.!~*", 1) + self.alnum(self.r.randrange(4, 12))

    def pick(self, seq):
        return self.r.choice(seq)


def _pem(g: _Gen, label: str, n_bytes: int) -> tuple[str, str]:
    body = g.b64(n_bytes)
    lines = "\n".join(body[i:i + 64] for i in range(0, len(body), 64))
    return f"-----BEGIN {label}-----\n{lines}\n-----END {label}-----", body


def _secrets(g: _Gen) -> list[Sample]:
    out: list[Sample] = []

    def add(kind: str, value: str, secret: str, name: str | None = None, kinds: tuple[str, ...] = ()) -> None:
        out.append(Sample(kind, value, name, secret, frozenset(kinds or (kind,))))

    for i in range(PER_KIND):
        label = ["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY",
                 "DSA PRIVATE KEY", "PGP PRIVATE KEY BLOCK"][i % 7]
        pem, body = _pem(g, label, g.pick([121, 300, 1190]))
        value = [pem, json.dumps({"key": pem}), f"key file follows:\n{pem}\n"][i % 3]
        add("private-key", value, body)

    for i in range(PER_KIND):
        der = b"\x30\x82" + g.bytes(2) + b"\x02\x01\x03\x30\x82" + g.bytes(g.pick([600, 1500, 2500]))
        b64 = base64.b64encode(der).decode()
        add("pkcs12", [b64, f"pfx={b64}", f'{{"certificate": "{b64}"}}'][i % 3], b64[12:])

    for i in range(PER_KIND):
        key_id = g.hex(40)
        pem, body = _pem(g, "PRIVATE KEY", 1190)
        doc = {"type": "service_account", "project_id": f"{g.word()}-{g.hex(6)}", "private_key_id": key_id,
               "private_key": pem + "\n", "client_email": f"sa@{g.word()}.iam.gserviceaccount.com",
               "client_id": str(g.r.randrange(10**20, 10**21)), "token_uri": "https://oauth2.googleapis.com/token"}
        add("gcp-service-account-key", json.dumps(doc, indent=2 if i % 2 else None), key_id,
            kinds=("gcp-service-account-key", "private-key"))

    for i in range(PER_KIND):
        key = g.b64(64)
        account = f"{g.word()}{g.hex(6)}"
        suffix = g.pick([";EndpointSuffix=core.windows.net", "", ";EndpointSuffix=core.chinacloudapi.cn"])
        value = f"DefaultEndpointsProtocol={g.pick(['https', 'http'])};AccountName={account};AccountKey={key}{suffix}"
        add("azure-storage-connection-string", [value, f"conn: {value}", f'"{value}"'][i % 3], key)

    for _ in range(PER_KIND):
        key = g.b64(32)
        ns = f"{g.word()}-{g.hex(4)}"
        entity = g.pick(["", f";EntityPath={g.word()}-events"])
        value = (f"Endpoint=sb://{ns}.servicebus.windows.net/;SharedAccessKeyName="
                 f"{g.pick(['RootManageSharedAccessKey', 'send', 'listen'])};SharedAccessKey={key}{entity}")
        add("servicebus-or-eventhubs-connection-string", value, key)

    for i in range(PER_KIND):
        key = g.b64(64)
        value = [key, f"AccountEndpoint=https://{g.word()}.documents.azure.com:443/;AccountKey={key};",
                 f"storage key {key}", f"AccountKey={key}"][i % 4]
        add("azure-storage-account-key", value, key)

    for i in range(PER_KIND):
        key = g.b64(32)
        value = [f"HostName={g.word()}.azure-devices.net;SharedAccessKeyName=iothubowner;SharedAccessKey={key}",
                 f"SharedAccessKey={key}"][i % 2]
        add("azure-shared-access-key", value, key)

    for i in range(PER_KIND):
        sig = g.b64(32).replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
        account = f"{g.word()}{g.hex(4)}"
        value = [
            f"https://{account}.blob.core.windows.net/models/m.pkl?sv=2022-11-02&ss=b&srt=o&sp=r&se=2026-12-01T00:00:00Z&sig={sig}",
            f"?sp=r&st=2026-01-01T00:00:00Z&se=2026-12-31T00:00:00Z&spr=https&sv=2022-11-02&sr=b&sig={sig}",
            f"sv=2021-08-06&ss=bfqt&srt=sco&sp=rwdlacupiytfx&se=2027-01-01T00:00:00Z&st=2026-01-01T00:00:00Z&spr=https&sig={sig}",
            f"SharedAccessSignature sr=https%3A%2F%2F{account}.servicebus.windows.net%2Fq&sig={sig}&se=1767225600&skn=send",
        ][i % 4]
        add("azure-sas-token", value, sig)

    for i in range(PER_KIND):
        secret = g.s(string.ascii_letters + string.digits, 3) + str(g.r.randrange(10)) + "Q~" + g.s(
            string.ascii_letters + string.digits + "_~.-", 34)
        value = [secret, f"AZURE_CLIENT_SECRET={secret}", f"client secret {secret} (expires 2027)"][i % 3]
        add("entra-client-secret", value, secret)

    for i in range(PER_KIND):
        tenant = g.pick(["contoso", "fabrikam", "northwind"])
        if i % 3 == 0:
            tail = g.b64url(30)
            value = (f"https://{tenant}.webhook.office.com/webhookb2/{g.uuid()}@{g.uuid()}/IncomingWebhook/"
                     f"{g.hex(32)}/{g.uuid()}/V2{tail}")
            secret = tail
        elif i % 3 == 1:
            sig = g.b64url(32)
            value = (f"https://prod-{g.r.randrange(10, 99)}.westeurope.logic.azure.com:443/workflows/{g.hex(32)}/"
                     f"triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={sig}")
            secret = sig
        else:
            sig = g.b64url(32)
            value = (f"https://{g.hex(32)}.0a.environment.api.powerplatform.com:443/powerautomate/automations/direct/"
                     f"workflows/{g.hex(32)}/triggers/manual/paths/invoke?api-version=1&sp=%2Ftriggers%2Fmanual%2Frun"
                     f"&sv=1.0&sig={sig}")
            secret = sig
        add("teams-webhook-url", value, secret)

    base32 = string.ascii_uppercase + "234567"
    for i in range(PER_KIND):
        prefix = ["AKIA", "ASIA", "AKIA", "AROA", "AIDA", "AKIA"][i % 6]
        secret = g.s(base32, 16)
        value = [prefix + secret, f"aws_access_key_id = {prefix}{secret}", f"key {prefix}{secret} in us-east-1"][i % 3]
        add("aws-access-key-id", value, secret)

    b64chars = string.ascii_letters + string.digits + "+/"
    for i in range(PER_KIND):
        secret = g.s(b64chars, 40)
        value = [secret, f"aws_secret_access_key = {secret}", f"AWS_SECRET_ACCESS_KEY={secret}",
                 f"[default]\naws_access_key_id = AKIA{g.s(base32, 16)}\naws_secret_access_key = {secret}\n",
                 f"'{secret}'", f"secret key: {secret}"][i % 6]
        add("aws-secret-access-key", value, secret, kinds=("aws-secret-access-key",)
            if i % 6 != 3 else ("aws-secret-access-key", "aws-access-key-id"))

    for i in range(PER_KIND):
        secret = g.s(string.ascii_letters + string.digits + "_-", 35)
        add("gcp-api-key", ["AIza" + secret, f"https://maps.googleapis.com/maps/api/geocode/json?key=AIza{secret}"][i % 2],
            secret)

    for i in range(PER_KIND):
        secret = g.hex(32)
        add("databricks-pat", ["dapi" + secret, f"DATABRICKS_TOKEN=dapi{secret}", f"dapi{secret}-2"][i % 3], secret)

    for i in range(PER_KIND):
        secret = g.hex(32)
        add("databricks-oauth-secret", ["dose" + secret, f"DATABRICKS_CLIENT_SECRET=dose{secret}"][i % 2], secret)

    for i in range(PER_KIND):
        if i % 4 == 3:
            secret = g.alnum(22) + "_" + g.alnum(59)
            value = "github_pat_" + secret
        else:
            secret = g.alnum(36)
            value = g.pick(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + secret
        add("github-token", [value, f"https://x-access-token:{value}@github.com/org/repo.git"][i % 2],
            secret, kinds=("github-token",) if i % 2 == 0 else ("github-token", "url-credentials"))

    for i in range(PER_KIND):
        prefix = ["glpat-", "gldt-", "glrt-", "glptt-", "glsoat-", "gloas-"][i % 6]
        secret = g.s(string.ascii_letters + string.digits + "_-", 20 if i % 2 else 40)
        add("gitlab-token", [prefix + secret, f"CI_TOKEN={prefix}{secret}"][i % 2], secret)

    for i in range(PER_KIND):
        secret = g.s(string.ascii_letters + string.digits + "_-", 93) + "AA"
        value = f"sk-ant-{g.pick(['api03', 'admin01'])}-{secret}"
        add("anthropic-api-key", [value, f"ANTHROPIC_API_KEY={value}"][i % 2], secret)

    url_safe = string.ascii_letters + string.digits + "_-"
    for i in range(PER_KIND):
        if i % 4 == 0:
            secret = g.alnum(20) + "T3BlbkFJ" + g.alnum(20)
            value = "sk-" + secret
        elif i % 4 == 1:
            secret = g.s(url_safe, 74) + "T3BlbkFJ" + g.s(url_safe, 74)
            value = g.pick(["sk-proj-", "sk-svcacct-", "sk-admin-"]) + secret
        elif i % 4 == 2:
            secret = g.alnum(48)
            value = "sk-" + secret
        else:
            secret = g.s(url_safe, 58) + "T3BlbkFJ" + g.s(url_safe, 58)
            value = "sk-proj-" + secret
        add("openai-api-key", [value, f"OPENAI_API_KEY={value}", f'openai.api_key = "{value}"'][i % 3], secret)

    for i in range(PER_KIND):
        secret = g.s(string.ascii_letters, 34)
        prefix = "api_org_" if i % 4 == 3 else "hf_"
        add("huggingface-token", [prefix + secret, f"HF_TOKEN={prefix}{secret}", f"huggingface-cli login --token {prefix}{secret}"][i % 3],
            secret)

    for i in range(PER_KIND):
        secret = g.hex(40)
        if i % 4 == 3:
            add("wandb-api-key", secret, secret, name=g.pick(["wandb_api_key", "WANDB_API_KEY", "wandbApiKey"]),
                kinds=("credential-named-value",))
        else:
            add("wandb-api-key", [f"WANDB_API_KEY={secret}", f"wandb login {secret}", f"local-{secret}"][i % 4], secret)

    for i in range(PER_KIND):
        secret = g.s(url_safe, g.pick([70, 120, 160]))
        prefix = "pypi-AgENdGVzdC5weXBpLm9yZw" if i % 4 == 3 else "pypi-AgEIcHlwaS5vcmc"
        add("pypi-token", [prefix + secret, f"TWINE_PASSWORD={prefix}{secret}", f"password = {prefix}{secret}"][i % 3],
            secret)

    for i in range(PER_KIND):
        secret = g.alnum(36)
        value = [f"npm_{secret}", f"//registry.npmjs.org/:_authToken=npm_{secret}", f"NPM_TOKEN=npm_{secret}",
                 f"//pkgs.dev.azure.com/org/_packaging/feed/npm/registry/:_authToken={g.b64url(40)}"][i % 4]
        secret = value.rsplit("=", 1)[-1].removeprefix("npm_") if i % 4 == 3 else secret
        add("npm-token", value, secret)

    for i in range(PER_KIND):
        secret = g.alnum(g.pick([24, 99]))
        add("stripe-key", [f"sk_live_{secret}", f"rk_live_{secret}", f"STRIPE_API_KEY=sk_live_{secret}"][i % 3], secret)

    for i in range(PER_KIND):
        secret = f"{g.s(url_safe, 22)}.{g.s(url_safe, 43)}"
        add("sendgrid-api-key", [f"SG.{secret}", f"SENDGRID_API_KEY=SG.{secret}"][i % 2], secret)

    for i in range(PER_KIND):
        if i % 3 == 2:
            secret = f"{g.r.randrange(1, 9)}-A{g.s(string.ascii_uppercase + string.digits, 10)}-{g.r.randrange(10**12, 10**13)}-{g.hex(64)}"
            value = "xapp-" + secret
        else:
            secret = f"{g.r.randrange(10**11, 10**12)}-{g.r.randrange(10**12, 10**13)}-{g.alnum(24)}"
            value = g.pick(["xoxb-", "xoxp-", "xoxa-", "xoxr-", "xoxe-"]) + secret
        add("slack-token", [value, f"SLACK_BOT_TOKEN={value}"][i % 2], secret)

    for i in range(PER_KIND):
        path = [f"services/T{g.s(string.ascii_uppercase + string.digits, 9)}/B{g.s(string.ascii_uppercase + string.digits, 10)}/{g.alnum(24)}",
                f"workflows/T{g.s(string.ascii_uppercase + string.digits, 9)}/A{g.s(string.ascii_uppercase + string.digits, 10)}/{g.r.randrange(10**17, 10**18)}/{g.alnum(24)}",
                f"triggers/T{g.s(string.ascii_uppercase + string.digits, 9)}/{g.r.randrange(10**12, 10**13)}/{g.hex(32)}"][i % 3]
        add("slack-webhook-url", f"https://hooks.slack.com/{path}", path.rsplit("/", 1)[-1])

    for i in range(PER_KIND):
        pw = g.password()
        user = g.pick(["svc", "admin", "ml_reader", "default", ""]) or "svc"
        host = f"{g.word()}-{g.hex(4)}.internal"
        value = [
            f"https://{user}:{pw}@{host}/simple/",
            f"postgresql+psycopg2://{user}:{pw}@{host}:5432/features",
            f"postgresql://{user}:{pw}@{host}/churn?sslmode=require",
            f"mysql+pymysql://{user}:{pw}@{host}:3306/ml",
            f"mongodb+srv://{user}:{pw}@{g.word()}.abcde.mongodb.net/db?retryWrites=true&w=majority",
            f"redis://:{pw}@{host}:6379/0",
            f"rediss://default:{pw}@{host}:6380",
            f"amqp://{user}:{pw}@{host}:5672/%2F",
            f"amqps://{user}:{pw}@{host}:5671/vhost",
            f"mssql+pyodbc://{user}:{pw}@{host}/db?driver=ODBC+Driver+18+for+SQL+Server",
            f"snowflake://{user}:{pw}@acme-xy12345/ANALYTICS/PUBLIC",
            f"jdbc:mysql://{user}:{pw}@{host}:3306/ml",
        ][i % 12]
        add("url-credentials", value, pw)

    for i in range(PER_KIND):
        header = {"alg": g.pick(["RS256", "HS256", "ES256"]), "typ": "JWT", "kid": g.hex(16)}
        payload = {"sub": g.uuid(), "aud": "api://evidence", "iat": 1764547200 + i, "exp": 1764550800 + i,
                   "tid": g.uuid(), "scp": "user_impersonation"}
        token = ".".join([base64.urlsafe_b64encode(json.dumps(header).encode()).rstrip(b"=").decode(),
                          base64.urlsafe_b64encode(json.dumps(payload).encode()).rstrip(b"=").decode(),
                          g.b64url(g.pick([32, 64, 256]))])
        add("jwt", [token, f"Authorization: Bearer {token}"][i % 2], token.rsplit(".", 1)[-1])

    for i in range(PER_KIND):
        pw = g.password()
        host = f"{g.word()}-{g.hex(4)}"
        value = [
            f"jdbc:sqlserver://{host}.database.windows.net:1433;database=ml;user=svc@{host};password={pw};encrypt=true",
            f"jdbc:postgresql://{host}:5432/features?user=svc&password={pw}&ssl=true",
            f"Driver={{ODBC Driver 18 for SQL Server}};Server=tcp:{host},1433;Database=ml;Uid=svc;Pwd={pw};",
            f"Server={host};Database=ml;User Id=svc;Password={pw};",
            f"password: {pw}",
            json.dumps({"user": "svc", "password": pw}),
            f"api_key={pw}",
            f"client_secret: {pw}",
            f"secret={pw}",
            f"token={pw}",
            f"PWD={pw}",
            f"access_key = {pw}",
        ][i % 12]
        add("credential-assignment", value, pw)

    for i in range(PER_KIND):
        pw = g.password()
        name = ["db_password", "hfToken", "client_secret", "storage_account_key", "api-key", "sasToken",
                "openai_key", "SMTP_PASSWORD", "registryPassword", "auth_token", "servicePrincipalSecret",
                "apikey"][i % 12]
        add("credential-named-value", pw, pw, name=name)
    return out


def _lookalikes(g: _Gen) -> list[Sample]:
    out: list[Sample] = []

    def add(label: str, value: str, name: str | None = None) -> None:
        out.append(Sample(label, value, name))

    for _ in range(12):
        add("hex digest", g.pick([g.hex(32), g.hex(40), g.hex(64), g.hex(128)]))
        add("hex digest", g.pick(["sha256:", "md5:", "sha1=", "sha512:"]) + g.hex(64))
        add("git sha", g.hex(40), name=g.pick(["git_sha", "mlflow.source.git.commit", "commit", "revision"]))
        add("git sha", g.hex(7), name="short_sha")
        add("uuid / id", g.uuid())
        add("uuid / id", g.hex(32), name="run_id")
        add("uuid / id", f"m-{g.hex(32)}", name="model_id")
        add("uuid / id", f"{g.r.randrange(1000, 9999)}-{g.r.randrange(100000, 999999)}-{g.s(string.ascii_lowercase, 8)}",
            name="cluster_id")
        add("uuid / id", f"/subscriptions/{g.uuid()}/resourceGroups/rg-{g.word()}/providers/"
            f"Microsoft.MachineLearningServices/workspaces/ws-{g.word()}")
        add("base64 model hash", g.b64(32))  # sha256, 44 characters
        add("base64 model hash", "sha256-" + g.b64(32))
        add("base64 model hash", "sha512-" + g.b64(64))  # npm/SRI integrity
        add("base64 model hash", g.b64(28))  # sha224: 38 characters + "=="
        add("base64 model hash", g.b64url(32), name="model_hash")
        add("base64 model hash", g.b64(20), name="sha1_b64")
        add("version string", g.pick([f"{g.r.randrange(10)}.{g.r.randrange(30)}.{g.r.randrange(10)}",
                                      f"v{g.r.randrange(10)}.{g.r.randrange(30)}.0rc{g.r.randrange(5)}",
                                      f"2.{g.r.randrange(9)}.1+cu121", f"torch=={g.r.randrange(3)}.{g.r.randrange(9)}.1"]))
        add("version string", f"python:3.11-slim@sha256:{g.hex(64)}", name="image")
        add("tokenizer / model name", g.pick(["bert-base-uncased", "openai/clip-vit-base-patch32", "gpt2",
                                              "sentence-transformers/all-MiniLM-L6-v2", "meta-llama/Llama-3.1-8B-Instruct",
                                              "cl100k_base", "hf-internal-testing/llama-tokenizer", "scikit-learn",
                                              "sk-learn-pipeline", "microsoft/deberta-v3-base"]),
            name=g.pick(["tokenizer", "base_model", "tokenizer_name", "pretrained"]))
        add("tokenizer / model name", g.pick(["[MASK]", "<|endoftext|>", "</s>", "<pad>", "[UNK]", "[CLS]"]),
            name=g.pick(["mask_token", "eos_token", "pad_token", "unk_token", "cls_token"]))
        add("tokenizer / model name", g.pick(["pad_token=<pad>", "mask_token=[MASK]", "eos_token=<|endoftext|>",
                                              "max_tokens=4096", "token_limit=8192"]))
        add("url without credentials", g.pick([
            f"http://{g.word()}:5000/", f"https://{g.word()}.azuredatabricks.net/ml/experiments/{g.r.randrange(10**15)}",
            f"s3://{g.word()}-bucket/models/{g.hex(8)}/model.pkl",
            f"abfss://{g.word()}@acct{g.hex(4)}.dfs.core.windows.net/churn/train.parquet",
            f"wasbs://models@acct{g.hex(4)}.blob.core.windows.net/{g.word()}",
            f"dbfs:/databricks/mlflow-tracking/{g.r.randrange(10**15)}/{g.hex(32)}/artifacts",
            f"mlflow-artifacts:/{g.r.randrange(100)}/{g.hex(32)}/artifacts", f"git@github.com:{g.word()}/models.git",
            f"ssh://git@github.com/{g.word()}/models.git", f"https://huggingface.co/{g.word()}/model-{g.hex(6)}",
            f"https://svc@{g.word()}.internal/simple/", f"postgresql://{g.word()}.internal:5432/features",
            f"https://acct{g.hex(4)}.blob.core.windows.net/models/m.pkl", "http://[::1]:8080/health",
            f"https://acct{g.hex(4)}.blob.core.windows.net/c?restype=container&comp=list&sv=2022-11-02",
            f"redis://redis-{g.hex(4)}:6379/0", "https://login.microsoftonline.com/common/oauth2/v2.0/token",
        ]))
        vault = f"kv-{g.word()}-{g.hex(4)}"
        secret_name = g.pick(["db-password", "storage-key", "hf-token", "scoring-api-key"])
        add("secret reference", g.pick([
            f"@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/{secret_name}/{g.hex(32)})",
            f"@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/{secret_name}/)",
            f"@Microsoft.KeyVault(VaultName={vault};SecretName={secret_name})",
            f"@Microsoft.KeyVault(VaultName={vault};SecretName={secret_name};SecretVersion={g.hex(32)})",
        ]), name=g.pick(["api_key", "db_password", "storage_account_key", "client_secret", "connection_string"]))
        add("secret reference", g.pick([f"https://{vault}.vault.azure.net/secrets/{secret_name}",
                                        f"https://{vault}.vault.azure.net/secrets/{secret_name}/{g.hex(32)}"]),
            name=g.pick(["api_key", "password", "hf_token"]))
        add("secret reference", g.pick([f"{{{{secrets/{g.word()}/{secret_name}}}}}",
                                        f'dbutils.secrets.get(scope="{g.word()}", key="{secret_name}")',
                                        f"dbutils.secrets.get('{g.word()}', '{secret_name}')",
                                        "${{ secrets.HF_TOKEN }}"]),
            name=g.pick(["password", "token", "api_key", "aws_secret_access_key", "sas_token"]))
        env = g.pick(["DB_PASSWORD", "SCORING_API_KEY", "HF_TOKEN", "AZURE_CLIENT_SECRET", "OPENAI_API_KEY"])
        add("secret reference", g.pick([f"${{{env}}}", f"${env}", f"%{env}%", f"${{env:{env}}}"]),
            name=g.pick(["password", "api_key", "token", "client_secret"]))
        add("secret reference", g.pick([
            f"password=${{{env}}}", f"postgresql://svc:${{{env}}}@db.internal:5432/features",
            f"AccountKey={{{{secrets/{g.word()}/storage-key}}}}", f"api_key: ${{{env}}}",
            f"https://svc:${env}@host", f"token={{{{secrets/{g.word()}/{secret_name}}}}}",
            f"Server=db;User Id=svc;Password=@Microsoft.KeyVault(SecretUri=https://{vault}.vault.azure.net/secrets/db/);",
        ]))
        add("environment variable name", env, name=g.pick(["scoring_api_key", "password", "hf_token", "api_key",
                                                          "client_secret", "token", "OPENAI_API_KEY"]))
        add("masked or placeholder", g.pick(["********", "<redacted>", "xxxx", "changeme", "none", "REDACTED", "...",
                                             "<your-api-key>", "{api_key}", "null"]),
            name=g.pick(["password", "api_key", "token", "secret"]))
        add("masked or placeholder", g.pick(["https://svc:****@db.internal/", "postgresql://svc:xxxx@db/features",
                                             "password=********", "api_key=<your-api-key>"]))
        add("credential-sounding name, ordinary value", *g.pick([
            ("password_min_length", "12"), ("token_limit", "4096"), ("max_tokens", "512"),
            ("secret_name", "scoring-key"), ("key_vault_url", f"https://{vault}.vault.azure.net/"),
            ("token_endpoint", "https://login.microsoftonline.com/common/oauth2/v2.0/token"),
            ("sas_expiry", "2026-12-01T00:00:00Z"), ("api_key_header", "X-API-Key"), ("secret_rotation_days", "90"),
            ("api_key_env", "SCORING_API_KEY"), ("use_token", "true"), ("token_type", "bearer"),
        ])[::-1])
        add("identifier or path", g.pick(["ModelRegistryWebhookSubscriptionHandler1", "TrainChurnGradientBoostingModelV2",
                                          "models/churn/v2/artifacts/model/MLmodel1",
                                          "FeatureStoreOnlineTableSyncPipelineJob7",
                                          "src/evidence_gate/rules/sec001/scanner2x"]))
        add("identifier or path", f"{g.word()}_{g.word()}_{g.r.randrange(2020, 2027)}_{g.hex(8)}", name="experiment")
        pub = g.b64(270)
        add("public key or certificate", g.pick([
            f"-----BEGIN PUBLIC KEY-----\n{pub[:64]}\n{pub[64:128]}\n-----END PUBLIC KEY-----",
            f"-----BEGIN CERTIFICATE-----\n{pub[:64]}\n{pub[64:128]}\n-----END CERTIFICATE-----",
            f"ssh-rsa AAAAB3NzaC1yc2E{pub[:200]} ml@build", f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5{g.b64(32)} ci@runner",
        ]))
        add("prose", g.pick([
            "The password policy requires rotation every 90 days.", "secret: see Key Vault",
            "Token: required for the scoring endpoint", "api key rotated on 2026-11-02 by the platform team",
            "Uses the SAS token from the linked service; no credentials are logged.",
            "Trained on the 2024 churn snapshot with gradient boosting (AUC 0.91).",
        ]), name=g.pick([None, "description", "notes"]))
        add("near-miss prefix", g.pick([
            "sk-learn", "hf_hub_download", f"ghp_{g.alnum(10)}", "dapi-docs", "AKIAEXAMPLE", "xoxo-gossip",
            f"glpat-{g.alnum(8)}", "AIzaSy", "SG.com", "npm_config_registry", "pypi-server", f"sk_live_{g.alnum(8)}",
            "local-mlflow-run", "eyJhbGciOiJIUzI1NiJ9", "sk-ant-docs", f"dose{g.hex(8)}", "api_org_chart",
            f"sig={g.hex(8)}", "Q~", f"MIIC{g.alnum(10)}",
        ]))
        add("near-miss prefix", g.pick([f"sk-{g.word()}-{g.word()}-{g.r.randrange(100)}", f"hf_{g.word()}_dataset",
                                        f"xoxb-{g.r.randrange(1000)}", f"dapi{g.hex(12)}", f"AKIA{g.s(string.ascii_uppercase, 8)}"]),
            name=g.pick(["run_name", "dataset", "alias", "note"]))
        add("number or date", g.pick([str(g.r.randrange(10**9)), f"{g.r.random():.6f}", "2026-12-01T00:00:00Z",
                                      str(1764547200000 + g.r.randrange(10**6)), "1e-05"]),
            name=g.pick(["learning_rate", "seed", "timestamp", "n_estimators"]))
    return out


def corpus(seed: int = SEED) -> tuple[list[Sample], list[Sample]]:
    """(secrets, look-alikes), the same every call."""
    g = _Gen(seed)
    return _secrets(g), _lookalikes(g)
