//! The FTP receiver for cameras that upload their alarm pictures (`alarms.ftp`).
//!
//! `libunftp` speaks FTP (passive mode, FTPS with the dashboard's certificate when TLS is
//! on); this file gives it an accept loop of ours, so every control connection is admitted
//! through the dashboard's connection table, an authenticator that checks each camera's
//! password through the dashboard's login gate, and a storage back end that writes
//! nothing to disk:
//!
//! - every camera sees an empty virtual directory of its own (mkdir, cd, rename and
//!   delete succeed and change nothing; nothing can be downloaded or listed);
//! - an upload is read into memory up to `alarms.max_message_mb` and handed to the intake
//!   as one picture (a larger one is refused while it streams in, with 552);
//! - a path with `..` that would climb out of the camera's directory is refused (550) and
//!   audited.
//!
//! Evicting a connection from the table shuts its socket down (a clone of it), which ends
//! libunftp's session.

use super::intake::{Arrival, Intake};
use super::picture;
use crate::auth::Authenticator as Gate;
use crate::config::secret::Secret;
use crate::web::conn::ConnTable;
use async_trait::async_trait;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;
use unftp_core::auth::{AuthenticationError, Credentials, Principal, UserDetail, UserDetailError};
use unftp_core::storage::{Error, ErrorKind, Fileinfo, Metadata, StorageBackend};

/// Idle seconds before libunftp ends a session.
const IDLE_SESSION_S: u64 = 60;

/// One camera's FTP login.
#[derive(Clone)]
pub struct FtpLogin {
    pub camera: String,
    pub password: Secret,
}

/// What every connection shares.
pub struct Receiver {
    /// By user name.
    pub logins: HashMap<String, FtpLogin>,
    pub passive_ports: std::ops::RangeInclusive<u16>,
    /// The certificate and key for FTPS (AUTH TLS), when the dashboard has TLS.
    pub ftps: Option<(PathBuf, PathBuf)>,
    pub max_upload_bytes: usize,
    pub max_megapixels: f64,
    pub table: Arc<ConnTable>,
    pub auth: Arc<Gate>,
    pub audit: Arc<crate::audit::Audit>,
    pub intake: Intake,
}

/// Accepts control connections on `listener` until `stop` (alarm::accept_admitted).
pub async fn serve(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) {
    let table = receiver.table.clone();
    super::accept_admitted(
        "FTP",
        listener,
        table,
        stop,
        move |socket, peer, admission| control(receiver.clone(), peer.ip(), socket, admission),
    )
    .await;
}

/// One control connection until it ends or is evicted; eviction (or the end) shuts the
/// socket down through a clone of it, which ends libunftp's session task.
async fn control(
    r: Arc<Receiver>,
    ip: IpAddr,
    socket: tokio::net::TcpStream,
    admission: crate::web::conn::Admission,
) {
    let evicted = admission.shared.closed();
    let Ok(std_socket) = socket.into_std() else {
        return;
    };
    let Ok(handle) = std_socket.try_clone() else {
        return;
    };
    let _shut = ShutdownOnDrop(handle);
    let Ok(socket) = tokio::net::TcpStream::from_std(std_socket) else {
        return;
    };
    tokio::select! {
        _ = session(r, ip, socket) => {}
        _ = evicted.cancelled() => {}
    }
    drop(admission);
}

/// Shuts a socket down when dropped: also when the task is dropped at a shutdown or reload.
struct ShutdownOnDrop(std::net::TcpStream);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        let _ = self.0.shutdown(std::net::Shutdown::Both);
    }
}

/// One control connection, served by a libunftp server built for it (its storage knows
/// the client's address).
async fn session(r: Arc<Receiver>, ip: IpAddr, socket: tokio::net::TcpStream) {
    let inbox_receiver = r.clone();
    let storage = move || Inbox {
        receiver: inbox_receiver.clone(),
        ip,
    };
    let checker = Arc::new(Checker {
        receiver: r.clone(),
    });
    let cameras = Arc::new(Cameras {
        receiver: r.clone(),
    });
    let mut builder = libunftp::ServerBuilder::<Inbox, FtpCamera>::with_user_detail_provider(
        Box::new(storage),
        cameras,
    )
    .authenticator(checker)
    .greeting("sentrix alarm FTP")
    .passive_ports(r.passive_ports.clone())
    .idle_session_timeout(IDLE_SESSION_S);
    if let Some((cert, key)) = &r.ftps {
        builder = builder.ftps(cert.clone(), key.clone());
    }
    match builder.build() {
        Ok(server) => {
            let _ = server.service(socket).await;
        }
        Err(e) => tracing::error!("alarm FTP: cannot serve a connection: {e}"),
    }
}

/// The camera an FTP session logged in as.
#[derive(Debug, Clone)]
pub struct FtpCamera {
    pub camera: String,
}

impl fmt::Display for FtpCamera {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "camera {}", self.camera)
    }
}

impl UserDetail for FtpCamera {}

/// Checks a login through the dashboard's gate (lockout, failure counts, audit).
struct Checker {
    receiver: Arc<Receiver>,
}

impl fmt::Debug for Checker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Checker")
    }
}

#[async_trait]
impl unftp_core::auth::Authenticator for Checker {
    async fn authenticate(
        &self,
        username: &str,
        creds: &Credentials,
    ) -> Result<Principal, AuthenticationError> {
        let ip = creds.source_ip;
        let given = creds.password.clone().unwrap_or_default();
        let expected = match self
            .receiver
            .logins
            .get(username)
            .map(|l| l.password.reveal())
        {
            Some(Ok(p)) => Some(p),
            Some(Err(e)) => {
                tracing::error!("alarm FTP: the password of {username:?} cannot be read: {e}");
                return Err(AuthenticationError::new("temporary failure"));
            }
            None => None,
        };
        let (gate, user) = (self.receiver.auth.clone(), username.to_string());
        let checked = tokio::task::spawn_blocking(move || {
            gate.check_service_login("ftp", &user, &given, expected.as_deref(), ip)
        })
        .await;
        let who = format!("ftp:{}", cut(username, 64));
        match checked {
            Ok(Ok(())) => {
                self.receiver
                    .audit
                    .log(Some(&who), ip, "alarm_login", "ftp");
                Ok(Principal {
                    username: username.to_string(),
                })
            }
            Ok(Err(e)) => {
                let action = match e {
                    crate::auth::LoginError::Locked { .. } => "locked_out",
                    crate::auth::LoginError::Throttled { .. } => "rate_limited",
                    _ => "login_failed",
                };
                self.receiver.audit.log(Some(&who), ip, action, "ftp");
                Err(AuthenticationError::BadPassword)
            }
            Err(_) => Err(AuthenticationError::new("check failed")),
        }
    }
}

/// Maps a logged-in user name to its camera.
struct Cameras {
    receiver: Arc<Receiver>,
}

impl fmt::Debug for Cameras {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cameras")
    }
}

#[async_trait]
impl unftp_core::auth::UserDetailProvider for Cameras {
    type User = FtpCamera;

    async fn provide_user_detail(
        &self,
        principal: &Principal,
    ) -> Result<FtpCamera, UserDetailError> {
        let login = self
            .receiver
            .logins
            .get(&principal.username)
            .ok_or_else(|| UserDetailError::new("no such camera"))?;
        Ok(FtpCamera {
            camera: login.camera.clone(),
        })
    }
}

/// A camera's virtual, empty, write-only directory.
struct Inbox {
    receiver: Arc<Receiver>,
    ip: IpAddr,
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Inbox")
    }
}

/// What the virtual directory says of any path: an empty directory.
#[derive(Debug)]
pub struct DirMeta;

impl Metadata for DirMeta {
    fn len(&self) -> u64 {
        0
    }
    fn is_dir(&self) -> bool {
        true
    }
    fn is_file(&self) -> bool {
        false
    }
    fn is_symlink(&self) -> bool {
        false
    }
    fn modified(&self) -> unftp_core::storage::Result<SystemTime> {
        Ok(SystemTime::now())
    }
    fn gid(&self) -> u32 {
        0
    }
    fn uid(&self) -> u32 {
        0
    }
}

/// Whether `path` stays inside the camera's directory (no `..` climbs above its root).
pub fn stays_inside(path: &Path) -> bool {
    let mut depth: i64 = 0;
    for c in path.components() {
        match c {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => {}
        }
        if depth < 0 {
            return false;
        }
    }
    true
}

impl Inbox {
    fn check_path(&self, user: &FtpCamera, path: &Path) -> unftp_core::storage::Result<()> {
        if stays_inside(path) {
            return Ok(());
        }
        let why = format!("ftp: {} tried a path outside its directory", user.camera);
        self.receiver.audit.log(None, self.ip, "path_refused", &why);
        Err(Error::from(ErrorKind::PermissionDenied))
    }

    /// Checks an uploaded picture (off the runtime: it reads EXIF).
    async fn picture(
        &self,
        user: &FtpCamera,
        data: Vec<u8>,
    ) -> unftp_core::storage::Result<picture::Picture> {
        let max_megapixels = self.receiver.max_megapixels;
        let checked = tokio::task::spawn_blocking(move || picture::check(data, max_megapixels))
            .await
            .map_err(|e| Error::new(ErrorKind::LocalError, e))?;
        checked.map_err(|e| {
            let why = format!("ftp: {}: picture refused: {e}", user.camera);
            self.receiver
                .audit
                .log(None, self.ip, "alarm_refused", &why);
            Error::from(ErrorKind::PermissionDenied)
        })
    }

    /// Reads an upload into memory, refusing it once it passes the cap.
    async fn read_capped<R: tokio::io::AsyncRead + Unpin>(
        &self,
        input: R,
    ) -> unftp_core::storage::Result<Vec<u8>> {
        let cap = self.receiver.max_upload_bytes;
        let mut data = Vec::new();
        let mut limited = input.take(cap as u64 + 1);
        limited
            .read_to_end(&mut data)
            .await
            .map_err(|e| Error::new(ErrorKind::ConnectionClosed, e))?;
        if data.len() > cap {
            self.receiver.audit.log(
                None,
                self.ip,
                "alarm_refused",
                "ftp: upload over the size cap",
            );
            return Err(Error::from(ErrorKind::ExceededStorageAllocationError));
        }
        Ok(data)
    }
}

#[async_trait]
impl StorageBackend<FtpCamera> for Inbox {
    type Metadata = DirMeta;

    async fn metadata<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        path: P,
    ) -> unftp_core::storage::Result<DirMeta> {
        self.check_path(user, path.as_ref())?;
        Ok(DirMeta)
    }

    async fn list<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        path: P,
    ) -> unftp_core::storage::Result<Vec<Fileinfo<PathBuf, DirMeta>>> {
        self.check_path(user, path.as_ref())?;
        Ok(Vec::new())
    }

    async fn get<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        _user: &FtpCamera,
        _path: P,
        _start_pos: u64,
    ) -> unftp_core::storage::Result<Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin>> {
        Err(Error::from(ErrorKind::PermissionDenied))
    }

    async fn put<
        P: AsRef<Path> + Send + fmt::Debug,
        R: tokio::io::AsyncRead + Send + Sync + Unpin + 'static,
    >(
        &self,
        user: &FtpCamera,
        input: R,
        path: P,
        _start_pos: u64,
    ) -> unftp_core::storage::Result<u64> {
        self.check_path(user, path.as_ref())?;
        let data = self.read_capped(input).await?;
        let bytes = data.len() as u64;
        let (pictures, videos) = match super::video::looks_like_video(&data) {
            true => (Vec::new(), vec![data]),
            false => (vec![self.picture(user, data).await?], Vec::new()),
        };
        let arrival = Arrival {
            camera: user.camera.clone(),
            pictures,
            videos,
            subject: None,
            received_ms: crate::base::clock::wall_ms(),
            from: self.ip,
        };
        self.receiver
            .intake
            .submit(arrival)
            .map_err(|_| Error::from(ErrorKind::TransientFileNotAvailable))?;
        Ok(bytes)
    }

    async fn del<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.check_path(user, path.as_ref())
    }

    async fn mkd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.check_path(user, path.as_ref())
    }

    async fn rename<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        from: P,
        to: P,
    ) -> unftp_core::storage::Result<()> {
        self.check_path(user, from.as_ref())?;
        self.check_path(user, to.as_ref())
    }

    async fn rmd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.check_path(user, path.as_ref())
    }

    async fn cwd<P: AsRef<Path> + Send + fmt::Debug>(
        &self,
        user: &FtpCamera,
        path: P,
    ) -> unftp_core::storage::Result<()> {
        self.check_path(user, path.as_ref())
    }
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::stays_inside;
    use std::path::Path;

    #[test]
    fn a_path_may_not_climb_out_of_the_camera_directory() {
        assert!(stays_inside(Path::new("/2026/12/07/pic.jpg")));
        assert!(stays_inside(Path::new("a/../b.jpg")));
        assert!(!stays_inside(Path::new("../../etc/passwd")));
        assert!(!stays_inside(Path::new("/a/../../etc/passwd")));
    }
}
