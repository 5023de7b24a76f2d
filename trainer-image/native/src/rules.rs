//! The redaction rules, a declarative table (docs/session-schema.md lists the formats they cover).
//!
//! These patterns were written for RE2 and must keep RE2's meaning (tests/unit/curation/oracle.py
//! holds the same table for RE2 and test_native.py compares the two), so two RE2 defaults are
//! spelled out for Rust's `regex`: `\b` is an ASCII word boundary (`(?-u:\b)`) and `\s` is
//! `[\t\n\f\r ]` (RE2's `\s` has no `\v`). Case-insensitive parts fold Unicode case in both
//! engines (`K` matches the Kelvin sign).

use crate::follows::{key_then_separator, separator_on_line, word_then_space};
use crate::redact::{assignment, context, token, Rule};

/// Rules apply in this order, so a specific shape (`sk-...`) is named before a generic
/// one (`api_key=...`) could claim the same value. Values that start with `[` are never
/// matched, so already-redacted text is left (and counted) alone.
pub const RULES: [Rule; 34] = [
    // -- Fixed prefixes.
    token(
        "private_key",
        &["-----BEGIN"],
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY[A-Z ]*-----|$)",
    ),
    // Base64 of a PEM private key (kubeconfig client-key-data, a Secret's tls.key; RSA, PKCS#8, EC,
    // OpenSSH, encrypted, DSA; not certificates) or of a Docker config.json (`.dockerconfigjson`),
    // across the lines `base64` wraps it into.
    token(
        "base64_secret",
        &[
            "LS0tLS1CRUdJTiB",
            "eyJhdXRocyI6",
            "ewogICJhdXRocyI6",
            "ewoJImF1dGhz",
            "eyAiYXV0aHMi",
            "ewogICAgImF1dGhz",
        ],
        concat!(
            r"(?:LS0tLS1CRUdJTiB(?:SU0EgUFJJVkFURSBLRVkt|QUklWQVRFIEtFWS0t|FQyBQUklWQVRFIEtFWS0t|",
            r"PUEVOU1NIIFBSSVZBVEUgS0VZLS0t|FTkNSWVBURUQgUFJJVkFURSBLRVkt|EU0EgUFJJVkFURSBLRVkt)|",
            r"eyJhdXRocyI6|ewogICJhdXRocyI6|ewoJImF1dGhz|eyAiYXV0aHMi|ewogICAgImF1dGhz)",
            r"[A-Za-z0-9+/]*(?:\r?\n[A-Za-z0-9+/]+)*={0,2}"
        ),
    ),
    token(
        "aws_access_key_id",
        &[
            "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA",
        ],
        r"(?-u:\b)(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA)[0-9A-Z]{16}(?-u:\b)",
    ),
    token(
        "github_token",
        &["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"],
        r"(?-u:\b)(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})",
    ),
    // Personal, deploy, pipeline trigger, runner, CI job, OAuth app, feed and agent tokens; runner registration.
    token(
        "gitlab_token",
        &[
            "glpat-",
            "gldt-",
            "glptt-",
            "glrt-",
            "glcbt-",
            "glsoat-",
            "glffct-",
            "gloas-",
            "glimt-",
            "glagent-",
            "glft-",
            "GR1348941",
        ],
        r"(?-u:\b)(?:gl(?:pat|dt|ptt|rt|cbt|soat|ffct|oas|imt|agent|ft)-[A-Za-z0-9_-]{20,}|GR1348941[A-Za-z0-9_-]{20,})",
    ),
    token(
        "slack_token",
        &["xox", "xapp-"],
        r"(?-u:\b)(?:xox[abposre]|xapp)-[A-Za-z0-9-]{10,}",
    ),
    token(
        "slack_webhook",
        &["hooks.slack.com/"],
        r"https://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9/_-]+",
    ),
    token(
        "discord_webhook",
        &["discord"],
        r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/(?:v[0-9]+/)?webhooks/[0-9]+/[A-Za-z0-9_-]+",
    ),
    // OpenAI (sk-, sk-proj-, sk-svcacct-) and Anthropic (sk-ant-api03-) keys share the prefix.
    token("sk_api_key", &["sk-"], r"(?-u:\b)sk-[A-Za-z0-9_-]{20,}"),
    token(
        "stripe_key",
        &["k_live_", "k_test_"],
        r"(?-u:\b)[rs]k_(?:live|test)_[A-Za-z0-9]{16,}",
    ),
    // Stripe and Svix (Clerk, Resend, ...) webhook signing secrets.
    token("webhook_secret", &["whsec_"], r"(?-u:\b)whsec_[A-Za-z0-9+/=_-]{24,}"),
    token("google_api_key", &["AIza"], r"(?-u:\b)AIza[0-9A-Za-z_-]{35}"),
    // Google access and refresh tokens, Facebook, Amazon (Login with Amazon), Dropbox, Discord MFA.
    token(
        "oauth_token",
        &["ya29.", "1//0", "EAA", "Atza|", "Atzr|", "sl.", "mfa."],
        concat!(
            r"(?-u:\b)(?:ya29\.[A-Za-z0-9_-]{20,}|1//0[A-Za-z0-9_-]{30,}|EAA[A-Za-z0-9]{80,}|",
            r"Atz[ar]\|[A-Za-z0-9_|-]{20,}|sl\.[A-Za-z0-9_-]{120,}|mfa\.[A-Za-z0-9_-]{80,})"
        ),
    ),
    token("huggingface_token", &["hf_"], r"(?-u:\b)hf_[A-Za-z0-9]{30,}"),
    token("npm_token", &["npm_"], r"(?-u:\b)npm_[A-Za-z0-9]{36}(?-u:\b)"),
    token("pypi_token", &["pypi-Ag"], r"(?-u:\b)pypi-Ag[A-Za-z0-9_-]{50,}"),
    token(
        "docker_hub_token",
        &["dckr_"],
        r"(?-u:\b)dckr_(?:pat|oat)_[A-Za-z0-9_-]{20,}",
    ),
    // CircleCI, Buildkite, Vault, DigitalOcean, Grafana, Sentry, Atlassian, Linear, Postman, Shopify,
    // SendGrid, Databricks, RubyGems, NuGet, Pulumi, Doppler, age, Groq, Replicate, xAI, Perplexity,
    // Notion, Supabase, Tailscale, Heroku, Square.
    token(
        "vendor_token",
        &[
            "CCIPAT_",
            "bkua_",
            "hvs.",
            "hvb.",
            "hvr.",
            "_v1_",
            "glsa_",
            "glc_",
            "sntr",
            "ATATT3",
            "lin_api_",
            "PMAK-",
            "shp",
            "SG.",
            "dapi",
            "rubygems_",
            "oy2",
            "pul-",
            "dp.",
            "AGE-SECRET-KEY-1",
            "gsk_",
            "r8_",
            "xai-",
            "pplx-",
            "ntn_",
            "sbp_",
            "tskey-",
            "HRKU-",
            "sq0",
        ],
        concat!(
            r"(?-u:\b)(?:CCIPAT_[A-Za-z0-9]{20,}_[a-f0-9]{40}|bkua_[a-f0-9]{40}|hv[sbr]\.[A-Za-z0-9_-]{24,}|",
            r"do[opr]_v1_[a-f0-9]{64}|glsa_[A-Za-z0-9]{32}_[A-Fa-f0-9]{8}|glc_[A-Za-z0-9+/]{32,}={0,2}|",
            r"sntr[ysu]_[A-Za-z0-9+/=_]{40,}|ATATT3[A-Za-z0-9_=-]{150,}|lin_api_[A-Za-z0-9]{40}|",
            r"PMAK-[a-f0-9]{24}-[a-f0-9]{34}|shp(?:at|ca|pa|ss)_[a-fA-F0-9]{32}|",
            r"SG\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{43}|dapi[a-f0-9]{32}|rubygems_[a-f0-9]{48}|oy2[a-z0-9]{43}|",
            r"pul-[a-f0-9]{40}|dp\.(?:pt|st|sa|ct)\.[A-Za-z0-9]{40,}|AGE-SECRET-KEY-1[0-9A-Z]{58}|",
            r"gsk_[A-Za-z0-9]{48,}|r8_[A-Za-z0-9]{37}|xai-[A-Za-z0-9]{70,}|pplx-[A-Za-z0-9]{48,}|",
            r"ntn_[A-Za-z0-9]{40,}|sbp_[a-f0-9]{40}|tskey-[a-z]+-[A-Za-z0-9]{8,}-[A-Za-z0-9]{16,}|",
            r"HRKU-[A-Za-z0-9_-]{60}|sq0(?:atp|csp)-[A-Za-z0-9_-]{22,})"
        ),
    ),
    token(
        "jwt",
        &["eyJ"],
        r"(?-u:\b)eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}",
    ),
    // A Docker config.json entry: base64 of user:password, or an identity/registry token.
    context(
        "registry_auth",
        &["\"auth\"", "\"identitytoken\"", "\"registrytoken\""],
        [
            r#""(?:auth|identitytoken|registrytoken)"[\t\n\f\r ]*:[\t\n\f\r ]*""#,
            r"[A-Za-z0-9+/]{12,}={0,2}",
            "",
        ],
    ),
    token(
        "telegram_bot_token",
        &[":AA"],
        r"(?-u:\b)[0-9]{8,10}:AA[A-Za-z0-9_-]{30,}",
    ),
    // A bot token (base64 of a numeric user id, so MT..OT, a timestamp, an HMAC) handed to discord.py's run();
    // in an environment variable or a header, token_assignment and authorization_header take it.
    context(
        "discord_token",
        &[".run("],
        [
            r#"\.run\([\t ]*["']"#,
            r"(?:MT|Mj|Mz|ND|NT|Nj|Nz|OD|OT)[A-Za-z0-9_-]{22,24}\.[A-Za-z0-9_-]{6}\.[A-Za-z0-9_-]{27,38}",
            "",
        ],
    ),
    // Microsoft Entra ID (Azure AD) client secrets: 40 characters with `Q~` after the fourth.
    token(
        "azure_client_secret",
        &["Q~"],
        r"[A-Za-z0-9_~.-]{3}[0-9]Q~[A-Za-z0-9_~.-]{31,34}",
    ),
    // -- Context: a key, header, flag or URL part names the secret.
    // Pre-signed URLs: S3 (SigV4 and its session token), GCS, Azure SAS, CloudFront.
    context(
        "url_signature",
        &["sig=", "signature=", "security-token="],
        [
            r"(?i:[?&](?:X-Amz-Signature|X-Amz-Security-Token|X-Goog-Signature|sig|Signature)=)",
            r#"[^\t\n\f\r &#"'<>\[][^\t\n\f\r &#"'<>]{7,}"#,
            "",
        ],
    )
    .near_anchor(8),
    // AWS CLI output (`aws sts ...`, `aws configure export-credentials`), ~/.aws/credentials, the env form.
    context(
        "aws_secret",
        &[
            "secretaccess",
            "secret_access",
            "secret-access",
            "sessiontoken",
            "session_token",
            "session-token",
            "securitytoken",
            "security_token",
            "security-token",
        ],
        [
            r#"(?i:(?:secret[_-]?access[_-]?key|session[_-]?token|security[_-]?token)["']?[\t\n\f\r ]*[:=][\t\n\f\r ]*["']?)"#,
            r"[A-Za-z0-9/+=]{16,}",
            "",
        ],
    )
    .near_anchor(0),
    // Azure Storage, Service Bus and Event Hubs connection strings.
    context(
        "azure_storage_key",
        &["accountkey", "sharedaccess"],
        [
            r"(?i:(?:AccountKey|SharedAccessKey|SharedAccessSignature)[\t ]*=[\t ]*)",
            r#"[^\t\n\f\r ;"'\[<$][^\t\n\f\r ;"'<>]*"#,
            "",
        ],
    )
    .near_anchor(0),
    context(
        "bearer_token",
        &["bearer"],
        [r"(?i:(?-u:\b)bearer[\t\n\f\r ]+)", r"[A-Za-z0-9._~+/-]{16,}=*", ""],
    )
    .near_anchor(0)
    .after_anchor(word_then_space),
    // Basic (base64 of user:password) and the Token, Bot, ApiKey and sso-key schemes.
    context(
        "authorization_header",
        &["authorization"],
        [
            r#"(?i:authorization["']?[\t ]*[:=][\t ]*["']?(?:basic|token|bot|apikey|sso-key)[\t ]+)"#,
            r"[A-Za-z0-9+/._~-]{6,}=*",
            "",
        ],
    )
    .near_anchor(0)
    .after_anchor(separator_on_line),
    // scheme://user:password@host, the user possibly empty, the password possibly holding `@` or `:`.
    context(
        "url_password",
        &["://"],
        [
            r"(?-u:\b)[a-zA-Z][a-zA-Z0-9+.-]*://[^\t\n\f\r :/@]*:",
            r#"[^\t\n\f\r /\["'`<>][^\t\n\f\r /"'`<>]*"#,
            "@",
        ],
    ),
    // Passwords on command lines: mysql -pXXX, sshpass/mongo -p X, redis-cli -a X, docker/helm login -p X,
    // --password[=| ]X, curl -u user:X.
    context(
        "cli_password",
        &[
            "mysql",
            "mariadb",
            "sshpass",
            "mongo",
            "redis-cli",
            "docker",
            "podman",
            "nerdctl",
            "buildah",
            "skopeo",
            "helm",
            "oras",
            "--pass",
            "curl",
        ],
        [
            concat!(
                r"(?:(?i:(?-u:\b)(?:mysql|mysqldump|mysqladmin|mariadb|mariadb-dump|mysqlsh))(?-u:\b)[^\n]*?[\t ]-p[",
                r#""']?|(?-u:\b)(?:sshpass|mongo|mongosh)(?-u:\b)[^\n]*?[\t ]-p[\t ]+|(?-u:\b)redis-cli(?-u:\b)[^\n]*?[\t ]-a[\t ]+|"#,
                r"(?-u:\b)(?:docker|podman|nerdctl|buildah|skopeo|helm|oras)[\t ]+(?:[a-z]+[\t ]+)?login(?-u:\b)[^\n]*?[\t ]",
                r#"(?:-p|--password)[\t =]+|[\t ]--(?:password|passwd|pass)(?:=|[\t ]+)["']?|"#,
                r#"(?-u:\b)curl(?-u:\b)[^\n]*?[\t ](?:-u|--user)[\t =]*["']?[^\t\n\f\r :"']*:)"#
            ),
            r#"[^\t\n\f\r "'\[$<{-][^\t\n\f\r "']*"#,
            "",
        ],
    )
    .near_anchor(1),
    // .netrc: `machine host login user password secret`, on one line or several.
    context(
        "netrc_password",
        &["machine", "default"],
        [
            concat!(
                r"(?-u:\b)(?:machine[\t\n\f\r ]+[^\t\n\f\r ]+|default)[\t\n\f\r ]+",
                r"(?:(?:login|account)[\t\n\f\r ]+[^\t\n\f\r ]+[\t\n\f\r ]+)*password[\t\n\f\r ]+"
            ),
            r"[^\t\n\f\r \[][^\t\n\f\r ]*",
            "",
        ],
    )
    .near_anchor(0)
    .after_anchor(word_then_space),
    // A key name anywhere in a snake/kebab-case name: DB_PASSWORD, client_secret, aws_secret_access_key.
    // The value starts a new token: not a variable, template, path, call, comparison or flag
    // ($X, ${X}, {{ x }}, <x>, /run/x, ~/x, (x), == x, -x).
    assignment(
        "password_assignment",
        &[
            "password",
            "passwd",
            "passphrase",
            "pwd",
            "secret",
            "apikey",
            "api_key",
            "api-key",
            "accesstoken",
            "access_token",
            "access-token",
            "authtoken",
            "auth_token",
            "auth-token",
            "refreshtoken",
            "refresh_token",
            "refresh-token",
            "signingkey",
            "signing_key",
            "signing-key",
            "encryptionkey",
            "encryption_key",
            "encryption-key",
            "masterkey",
            "master_key",
            "master-key",
            "accountkey",
            "account_key",
            "account-key",
        ],
        [
            concat!(
                r"(?i:(?:password|passwd|passphrase|pwd|secret|api[_-]?key|access[_-]?token|auth[_-]?token|",
                r"refresh[_-]?token|(?:signing|encryption|master|account)[_-]?key)",
                r#"(?:[_-][a-z0-9]+)*["']?[\t\n\f\r ]*[:=][\t\n\f\r ]*["']?)"#
            ),
            r#"[^\t\n\f\r "',;\[\](){}$<=/~-][^\t\n\f\r "',;]{7,}"#,
            "",
        ],
    )
    .near_anchor(0)
    .after_anchor(key_then_separator),
    // Short passwords (under 8 characters) only where the key ends in password: PGPASSWORD=pg, "password": "root".
    assignment(
        "short_password",
        &["password", "passwd"],
        [
            r#"(?i:(?:password|passwd)["']?[\t ]*[:=][\t ]*["']?)"#,
            r#"[^\t\n\f\r "',;\[\](){}$<=/~-][^\t\n\f\r "',;]{0,6}"#,
            r#"(?:[\t\n\f\r "',;]|$)"#,
        ],
    )
    .near_anchor(0)
    .after_anchor(separator_on_line),
    // Any key ending in token (token:, bot_token=, authToken:, VAULT_TOKEN=) with a value of 16 or more characters
    // (not a value another rule redacted a part of: TOKEN=postgres://u:[REDACTED:url_password]@db).
    assignment(
        "token_assignment",
        &["token"],
        [
            r#"(?i:token["']?[\t ]*[:=][\t ]*["']?)"#,
            r#"[A-Za-z0-9][^\t\n\f\r "',;\[]{15,}"#,
            r#"(?:[\t\n\f\r "',;]|$)"#,
        ],
    )
    .near_anchor(0)
    .after_anchor(separator_on_line),
];
