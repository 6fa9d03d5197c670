//! Debian's Apache with `mod_auth_openidc` as an application that signs people in with
//! Doorman's OpenID Connect provider (SPEC §20), started from its own minimal
//! configuration in a temporary directory on a free loopback port. The mod_auth_openidc
//! part is the README's, with this test's addresses and secrets filled in.
//!
//! Everything under `/protected/` needs a sign-in (`AuthType openid-connect`); its page
//! `/protected/` shows what the module hands the application, one `name=value` line each:
//! `REMOTE_USER` (the `email` claim) and the claims `sub`, `email`, `name`, `groups`, `sid`,
//! `amr`.
//! The module's redirect URI is `/protected/redirect_uri`, which with `?logout=backchannel`
//! is also its back-channel logout endpoint (§21).
//!
//! Apache runs in the foreground as the leader of its own process group; dropping the
//! value stops it (TERM, then KILL to the whole group after a bounded wait).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const APACHE: &str = "/usr/sbin/apache2";
const MODULES: &str = "/usr/lib/apache2/modules";

/// What the Apache application is told about its provider and itself.
pub struct OidcClient<'a> {
    /// Doorman's issuer (`server.public_url`).
    pub issuer: &'a str,
    pub client_id: &'a str,
    pub client_secret: &'a str,
    /// `ES256` (Doorman's default) or `RS256`.
    pub id_token_alg: &'a str,
}

pub struct Apache {
    child: Child,
    pub port: u16,
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    dir: tempfile::TempDir,
}

fn installed() {
    let module = Path::new(MODULES).join("mod_auth_openidc.so");
    assert!(
        Path::new(APACHE).exists() && module.exists(),
        "Apache with mod_auth_openidc not found ({APACHE}, {}): install them (Debian: apt-get install apache2 libapache2-mod-auth-openidc), or run `bash .ci/run`, which installs them",
        module.display()
    );
}

impl Apache {
    /// Starts Apache protecting `/protected/` with `client`; waits until it answers.
    pub async fn start(client: &OidcClient<'_>) -> Apache {
        installed();
        let dir = tempfile::tempdir().unwrap();
        let port = super::process::free_port();
        Apache::try_start(dir, port, client)
            .await
            .unwrap_or_else(|why| panic!("Apache did not start: {why}"))
    }

    /// One start on `port`: Err with the error log when Apache ended or did not answer
    /// in time.
    async fn try_start(
        dir: tempfile::TempDir,
        port: u16,
        client: &OidcClient<'_>,
    ) -> Result<Apache, String> {
        let conf = write_site(dir.path(), port, client);
        let child = Command::new(APACHE)
            .arg("-f")
            .arg(&conf)
            .arg("-DFOREGROUND")
            .env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("LANG", "C")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Its own group, so its worker processes end with it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("cannot run {APACHE}: {e}"))?;
        let mut apache = Apache {
            child,
            port,
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        let probe = super::client();
        loop {
            if let Ok(Some(status)) = apache.child.try_wait() {
                return Err(format!("apache2 ended ({status}):\n{}", apache.error_log()));
            }
            // Any answer from the unprotected root means Apache serves.
            if let Ok(resp) = probe
                .get(apache.url("/"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && resp.headers().contains_key("server")
            {
                return Ok(apache);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "apache2 did not answer on {port} in 20 s:\n{}",
                    apache.error_log()
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The redirect URI to register at Doorman.
    pub fn redirect_uri(&self) -> String {
        self.url("/protected/redirect_uri")
    }

    /// The back-channel logout URI to register at Doorman (§21).
    pub fn backchannel_logout_uri(&self) -> String {
        self.url("/protected/redirect_uri?logout=backchannel")
    }

    /// Apache's error log so far (the module logs its refusals there).
    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Apache {
    fn drop(&mut self) {
        // TERM lets the parent end its workers and give back shared memory and locks.
        let pid = self.child.id().to_string();
        let _ = Command::new("kill")
            .args(["-TERM", &pid])
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pid}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A page that shows what the module passed on, through mod_include (SSI).
const WHOAMI: &str = r#"user=<!--#echo encoding="none" var="REMOTE_USER" -->
sub=<!--#echo encoding="none" var="OIDC_CLAIM_sub" -->
email=<!--#echo encoding="none" var="OIDC_CLAIM_email" -->
name=<!--#echo encoding="none" var="OIDC_CLAIM_name" -->
groups=<!--#echo encoding="none" var="OIDC_CLAIM_groups" -->
sid=<!--#echo encoding="none" var="OIDC_CLAIM_sid" -->
amr=<!--#echo encoding="none" var="OIDC_CLAIM_amr" -->
"#;

/// Writes the configuration, the document root and the page; returns the config's path.
fn write_site(dir: &Path, port: u16, client: &OidcClient<'_>) -> std::path::PathBuf {
    let docs = dir.join("htdocs").join("protected");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(dir.join("htdocs").join("index.html"), "not protected\n").unwrap();
    std::fs::write(docs.join("index.shtml"), WHOAMI).unwrap();
    // As root Apache's workers run as www-data: they must read the site and the lock
    // files in the directory.
    let as_root = std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false);
    let user = if as_root {
        for path in [dir.to_path_buf(), dir.join("htdocs"), docs.clone()] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        "User www-data\nGroup www-data\n"
    } else {
        ""
    };
    let mut random = [0u8; 24];
    getrandom::fill(&mut random).unwrap();
    let passphrase: String = random.iter().map(|b| format!("{b:02x}")).collect();
    let d = dir.display();
    let conf = format!(
        r#"ServerRoot "{d}"
ServerName 127.0.0.1:{port}
Listen 127.0.0.1:{port}
PidFile "{d}/apache2.pid"
DefaultRuntimeDir "{d}"
Mutex file:{d} default
ErrorLog "{d}/error.log"
LogLevel warn auth_openidc:info
{user}
LoadModule mpm_event_module {MODULES}/mod_mpm_event.so
LoadModule authz_core_module {MODULES}/mod_authz_core.so
LoadModule authn_core_module {MODULES}/mod_authn_core.so
LoadModule authz_user_module {MODULES}/mod_authz_user.so
LoadModule dir_module {MODULES}/mod_dir.so
LoadModule include_module {MODULES}/mod_include.so
LoadModule auth_openidc_module {MODULES}/mod_auth_openidc.so

StartServers 1
ServerLimit 1
ThreadsPerChild 16
MaxRequestWorkers 16

DocumentRoot "{d}/htdocs"
DirectoryIndex index.html index.shtml
<Directory "{d}/htdocs">
    Require all granted
</Directory>
<Files "*.shtml">
    Options +Includes
    ForceType "text/plain; charset=utf-8"
    SetOutputFilter INCLUDES
</Files>

OIDCCacheType shm

{site}"#,
        site = readme_site(port, client, &passphrase),
    );
    let path = dir.join("apache2.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// The README's Apache configuration with this test's addresses, client and secrets: the
/// tests run what the README gives.
fn readme_site(port: u16, client: &OidcClient<'_>, passphrase: &str) -> String {
    let site = super::readme_block("apache")
        .replace(
            "https://doorman.acme.test",
            client.issuer.trim_end_matches('/'),
        )
        .replace(
            "https://intranet.acme.test",
            &format!("http://127.0.0.1:{port}"),
        )
        .replace(
            "OIDCClientID intranet",
            &format!("OIDCClientID {}", client.client_id),
        )
        .replace("<secret from `doorman oidc secret`>", client.client_secret)
        .replace("<a long random string>", passphrase)
        .replace(
            "OIDCIDTokenSignedResponseAlg ES256",
            &format!("OIDCIDTokenSignedResponseAlg {}", client.id_token_alg),
        );
    assert!(
        !site.contains("acme.test")
            && !site
                .replace("<Location", "")
                .replace("</Location>", "")
                .contains('<'),
        "the README's Apache block has a placeholder this test does not fill:\n{site}"
    );
    site
}
