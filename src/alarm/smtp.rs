//! The SMTP receiver for cameras that e-mail their alarm pictures (`alarms.smtp`).
//!
//! Our own accept loop admits each connection through the dashboard's connection table
//! (per-address and total caps, rates of new connections, eviction of idle ones), so a
//! flood of mail connections cannot take more than the dashboard could. The `mailin` crate
//! is the SMTP state machine (command parsing and order, DATA with dot-unstuffing, RSET,
//! QUIT); this file does the I/O and what mailin cannot:
//!
//! - EHLO answers with our extensions: SIZE (the cap), STARTTLS while in clear, and AUTH
//!   PLAIN LOGIN once TLS is up (or always with `allow_plain_auth`);
//! - AUTH is checked per camera through the dashboard's login gate (`Authenticator::
//!   check_service_login`), so wrong passwords lock out as for the dashboard; a camera
//!   with a password is reachable only by a session that authenticated as it;
//! - MAIL's SIZE parameter is checked (552 at once when too big) and stripped for mailin;
//! - STARTTLS uses the dashboard's certificate; anything the client pipelined behind it
//!   is refused (no command injection into the TLS session);
//! - lines are read with a length cap and timeouts, and a message is counted while it is
//!   read: past `alarms.max_message_mb` its bytes are dropped as they arrive and DATA ends
//!   in 552, so memory stays flat whatever is sent.
//!
//! A finished message is parsed (mime.rs) on a blocking thread and handed to the intake
//! (intake.rs), which makes the event.

use super::intake::{Arrival, Intake};
use super::mime;
use crate::auth::{Authenticator, LoginError};
use crate::config::secret::Secret;
use crate::web::conn::{Admission, ConnTable, Guarded};
use base64::Engine;
use mailin::{Action, Handler, Response, SessionBuilder};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio_util::sync::CancellationToken;

/// The longest command line (RFC 5321 allows 512; AUTH lines run longer).
const MAX_COMMAND_BYTES: usize = 4096;
/// A data line longer than this is read in pieces of it.
const MAX_DATA_LINE_BYTES: usize = 64 * 1024;
/// Time for a client to send a command.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// Time for the next piece of a message (DATA).
const DATA_TIMEOUT: Duration = Duration::from_secs(60);
/// Recipients of one message at most.
const MAX_RECIPIENTS: usize = 16;
/// Refused commands (unknown recipients, bad syntax, failed AUTH) before the connection
/// is closed.
const MAX_REFUSALS: u32 = 20;
/// Messages per connection at most.
const MAX_MESSAGES: u32 = 100;
/// The name the receiver greets with.
const SERVER_NAME: &str = "sentrix.local";

/// One camera's mailbox.
#[derive(Clone)]
pub struct Mailbox {
    pub camera: String,
    /// The user name and password the camera must authenticate with, if any.
    pub login: Option<(String, Secret)>,
}

/// What every connection shares.
pub struct Receiver {
    /// By recipient address, lower case.
    pub mailboxes: HashMap<String, Mailbox>,
    pub allow_plain_auth: bool,
    pub max_message_bytes: usize,
    pub max_pictures: usize,
    pub max_megapixels: f64,
    pub tls: Option<tokio_rustls::TlsAcceptor>,
    pub table: Arc<ConnTable>,
    pub auth: Arc<Authenticator>,
    pub audit: Arc<crate::audit::Audit>,
    pub intake: Intake,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// Accepts connections on `listener` until `stop` (alarm::accept_admitted).
pub async fn serve(
    receiver: Arc<Receiver>,
    listener: tokio::net::TcpListener,
    stop: CancellationToken,
) {
    let table = receiver.table.clone();
    super::accept_admitted(
        "SMTP",
        listener,
        table,
        stop,
        move |socket, peer, admission| {
            Conn::new(receiver.clone(), peer, Arc::new(admission), socket).run()
        },
    )
    .await;
}

/// What the mailin handler and the connection share about the current message.
#[derive(Default)]
struct Shared {
    /// The user name this session authenticated as.
    authenticated: Option<String>,
    cameras: Vec<String>,
    data: Vec<u8>,
    too_big: bool,
    complete: Option<Vec<u8>>,
    refusals: u32,
    /// Why the last RCPT was refused, for the audit.
    refused_rcpt: Option<String>,
}

struct MailHandler {
    receiver: Arc<Receiver>,
    shared: Arc<Mutex<Shared>>,
}

impl MailHandler {
    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Handler for MailHandler {
    fn mail(&mut self, _ip: IpAddr, _domain: &str, _from: &str) -> Response {
        let mut s = self.lock();
        s.cameras.clear();
        s.data.clear();
        s.too_big = false;
        mailin::response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut s = self.lock();
        let Some(mailbox) = self.receiver.mailboxes.get(&to.to_ascii_lowercase()) else {
            s.refusals += 1;
            s.refused_rcpt = Some(format!("unknown recipient {}", cut(to, 80)));
            return Response::custom(550, "5.1.1 No such mailbox here".into());
        };
        if let Some((user, _)) = &mailbox.login
            && s.authenticated.as_deref() != Some(user.as_str())
        {
            s.refusals += 1;
            s.refused_rcpt = Some(format!("{}: not authenticated", mailbox.camera));
            return Response::custom(530, "5.7.0 Authentication required".into());
        }
        if s.cameras.len() >= MAX_RECIPIENTS {
            return Response::custom(452, "4.5.3 Too many recipients".into());
        }
        if !s.cameras.contains(&mailbox.camera) {
            s.cameras.push(mailbox.camera.clone());
        }
        mailin::response::OK
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        let max = self.receiver.max_message_bytes;
        let mut s = self.lock();
        if s.too_big {
            return Ok(());
        }
        if s.data.len() + buf.len() > max {
            s.too_big = true;
            s.data = Vec::new();
            return Ok(());
        }
        s.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut s = self.lock();
        if s.too_big {
            s.refusals += 1;
            let mb = self.receiver.max_message_bytes / (1024 * 1024);
            return Response::custom(552, format!("5.3.4 Message too big: the limit is {mb} MB"));
        }
        s.complete = Some(std::mem::take(&mut s.data));
        mailin::response::OK
    }
}

/// One connection: its stream, mailin's session and what they share.
struct Conn {
    receiver: Arc<Receiver>,
    peer: SocketAddr,
    admission: Arc<Admission>,
    reader: Option<BufReader<Box<dyn Io>>>,
    session: mailin::Session<MailHandler>,
    shared: Arc<Mutex<Shared>>,
    tls_active: bool,
    in_data: bool,
    /// The last DATA piece ended mid-line (a line longer than `MAX_DATA_LINE_BYTES`).
    mid_line: bool,
    messages: u32,
}

/// How a connection ends early.
enum Stop {
    Close,
}

type Step = Result<(), Stop>;

impl Conn {
    fn new(
        receiver: Arc<Receiver>,
        peer: SocketAddr,
        admission: Arc<Admission>,
        socket: tokio::net::TcpStream,
    ) -> Self {
        let _ = socket.set_nodelay(true);
        let stream: Box<dyn Io> = Box::new(Guarded::new(socket, admission.clone()));
        let shared = Arc::new(Mutex::new(Shared::default()));
        let mut builder = SessionBuilder::new(SERVER_NAME);
        if receiver.tls.is_some() {
            builder.enable_start_tls();
        }
        let handler = MailHandler {
            receiver: receiver.clone(),
            shared: shared.clone(),
        };
        let session = builder.build(peer.ip(), handler);
        Self {
            receiver,
            peer,
            admission,
            reader: Some(BufReader::new(stream)),
            session,
            shared,
            tls_active: false,
            in_data: false,
            mid_line: false,
            messages: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    async fn run(mut self) {
        let greeting = self.session.greeting();
        if self.answer(&greeting).await.is_err() {
            return;
        }
        let mut line = Vec::with_capacity(1024);
        loop {
            line.clear();
            let (max, wait) = match self.in_data {
                true => (MAX_DATA_LINE_BYTES, DATA_TIMEOUT),
                false => (MAX_COMMAND_BYTES, COMMAND_TIMEOUT),
            };
            match self.read_line(&mut line, max, wait).await {
                Ok(true) => {}
                Ok(false) | Err(Stop::Close) => return,
            }
            if self.step(&line).await.is_err() {
                return;
            }
        }
    }

    /// Reads one line of at most `max` bytes (a longer one comes in pieces). Ok(false) at
    /// the end of the stream, on a timeout or an error.
    async fn read_line(
        &mut self,
        buf: &mut Vec<u8>,
        max: usize,
        wait: Duration,
    ) -> Result<bool, Stop> {
        let reader = self.reader.as_mut().ok_or(Stop::Close)?;
        let mut limited = (&mut *reader).take(max as u64);
        let read = limited.read_until(b'\n', buf);
        match tokio::time::timeout(wait, read).await {
            Ok(Ok(n)) if n > 0 => Ok(true),
            Ok(_) => Ok(false),
            Err(_) => {
                let _ = self.write(b"421 4.4.2 Timeout, closing\r\n").await;
                Ok(false)
            }
        }
    }

    async fn step(&mut self, line: &[u8]) -> Step {
        let whole = line.ends_with(b"\n");
        if self.in_data {
            return self.data_line(line, whole).await;
        }
        if !whole {
            return self.close_with("500 5.5.2 Line too long").await;
        }
        let verb = verb_of(line);
        match verb.as_str() {
            "EHLO" => self.ehlo(line).await,
            "AUTH" => self.auth(line).await,
            "STARTTLS" => self.starttls(line).await,
            "MAIL" => self.mail(line).await,
            "BDAT" => self.refuse("502 5.5.1 CHUNKING is not offered").await,
            _ => self.forward(line).await,
        }
    }

    /// A piece of DATA: through mailin when it starts a line; the rest of an over-long
    /// line straight into the message (no dot-unstuffing applies mid-line).
    async fn data_line(&mut self, piece: &[u8], whole: bool) -> Step {
        let mid_line = std::mem::replace(&mut self.mid_line, !whole);
        if mid_line {
            let max = self.receiver.max_message_bytes;
            let mut s = self.lock();
            if !s.too_big && s.data.len() + piece.len() > max {
                s.too_big = true;
                s.data = Vec::new();
            } else if !s.too_big {
                s.data.extend_from_slice(piece);
            }
            return Ok(());
        }
        let response = self.session.process(piece);
        if response.action == Action::NoReply {
            return Ok(());
        }
        self.in_data = false;
        self.mid_line = false;
        let complete = self.lock().complete.take();
        match complete {
            Some(message) => self.deliver(message).await,
            None => self.answer(&response).await,
        }
    }

    /// EHLO through mailin (its state), answered with our extensions.
    async fn ehlo(&mut self, line: &[u8]) -> Step {
        let response = self.session.process(line);
        if response.code != 250 {
            return self.answer(&response).await;
        }
        let mut lines = vec![format!("{SERVER_NAME} greets you")];
        lines.push("8BITMIME".into());
        lines.push(format!("SIZE {}", self.receiver.max_message_bytes));
        if self.receiver.tls.is_some() && !self.tls_active {
            lines.push("STARTTLS".into());
        }
        if self.auth_offered() {
            lines.push("AUTH PLAIN LOGIN".into());
        }
        let mut text = String::new();
        for (i, l) in lines.iter().enumerate() {
            let sep = if i + 1 == lines.len() { ' ' } else { '-' };
            text.push_str(&format!("250{sep}{l}\r\n"));
        }
        self.write(text.as_bytes()).await
    }

    /// AUTH is offered once TLS is up, or in clear with `allow_plain_auth`, when a camera
    /// has a login at all.
    fn auth_offered(&self) -> bool {
        let any_login = self.receiver.mailboxes.values().any(|m| m.login.is_some());
        any_login && (self.tls_active || self.receiver.allow_plain_auth)
    }

    /// AUTH PLAIN or LOGIN (with or without an initial response), checked through the
    /// login gate on a blocking thread.
    async fn auth(&mut self, line: &[u8]) -> Step {
        if !self.auth_offered() {
            let why = match self.tls_active || self.receiver.allow_plain_auth {
                true => "503 5.5.1 No camera here has a login",
                false => "538 5.7.11 Encryption required: send STARTTLS first",
            };
            return self.refuse(why).await;
        }
        if self.lock().authenticated.is_some() {
            return self.refuse("503 5.5.1 Already authenticated").await;
        }
        let text = String::from_utf8_lossy(line).trim_end().to_string();
        let mut words = text.split_ascii_whitespace().skip(1);
        let mechanism = words.next().unwrap_or("").to_ascii_uppercase();
        let initial = words.next().map(str::to_string);
        let credentials = match mechanism.as_str() {
            "PLAIN" => self.auth_plain(initial).await?,
            "LOGIN" => self.auth_login(initial).await?,
            _ => {
                return self
                    .refuse("504 5.5.4 Unrecognized authentication type")
                    .await;
            }
        };
        let Some((user, password)) = credentials else {
            return self.refuse("501 5.5.2 Cannot decode the credentials").await;
        };
        self.check_login(user, password).await
    }

    async fn auth_plain(
        &mut self,
        initial: Option<String>,
    ) -> Result<Option<(String, String)>, Stop> {
        let encoded = match initial {
            Some(i) if i != "=" => i,
            _ => {
                self.write(b"334 \r\n").await?;
                self.challenge_answer().await?
            }
        };
        let Some(decoded) = decode64(&encoded) else {
            return Ok(None);
        };
        let mut parts = decoded.split('\0');
        let (_authz, user, password) = (parts.next(), parts.next(), parts.next());
        Ok(user
            .zip(password)
            .map(|(u, p)| (u.to_string(), p.to_string())))
    }

    async fn auth_login(
        &mut self,
        initial: Option<String>,
    ) -> Result<Option<(String, String)>, Stop> {
        let user = match initial {
            Some(i) => i,
            None => {
                self.write(b"334 VXNlcm5hbWU6\r\n").await?;
                self.challenge_answer().await?
            }
        };
        self.write(b"334 UGFzc3dvcmQ6\r\n").await?;
        let password = self.challenge_answer().await?;
        Ok(decode64(&user).zip(decode64(&password)))
    }

    /// The client's answer to a 334 challenge ("*" cancels: the connection goes on).
    async fn challenge_answer(&mut self) -> Result<String, Stop> {
        let mut buf = Vec::new();
        if !self
            .read_line(&mut buf, MAX_COMMAND_BYTES, COMMAND_TIMEOUT)
            .await?
        {
            return Err(Stop::Close);
        }
        Ok(String::from_utf8_lossy(&buf).trim().to_string())
    }

    async fn check_login(&mut self, user: String, password: String) -> Step {
        let expected = self
            .receiver
            .mailboxes
            .values()
            .find_map(|m| m.login.as_ref().filter(|(u, _)| *u == user))
            .map(|(_, secret)| secret.reveal());
        let expected = match expected {
            Some(Err(e)) => {
                tracing::error!("alarm SMTP: the password of {user:?} cannot be read: {e}");
                return self
                    .refuse("454 4.7.0 Temporary authentication failure")
                    .await;
            }
            Some(Ok(v)) => Some(v),
            None => None,
        };
        let (auth, ip, who) = (self.receiver.auth.clone(), self.peer.ip(), user.clone());
        let checked = tokio::task::spawn_blocking(move || {
            auth.check_service_login("smtp", &who, &password, expected.as_deref(), ip)
        })
        .await
        .unwrap_or_else(|e| Err(LoginError::Internal(e.to_string())));
        match checked {
            Ok(()) => {
                self.lock().authenticated = Some(user.clone());
                self.admission.mark().trust();
                self.receiver
                    .audit
                    .log(Some(&format!("smtp:{user}")), ip, "alarm_login", "smtp");
                self.write(b"235 2.7.0 Authentication succeeded\r\n").await
            }
            Err(e) => self.auth_failed(&user, e).await,
        }
    }

    async fn auth_failed(&mut self, user: &str, e: LoginError) -> Step {
        let (action, reply) = match e {
            LoginError::Locked { retry_after_s } => (
                "locked_out",
                format!("454 4.7.0 Locked: try again in {retry_after_s} s"),
            ),
            LoginError::Throttled { retry_after_s } => (
                "rate_limited",
                format!("454 4.7.0 Too many attempts: try again in {retry_after_s} s"),
            ),
            LoginError::Internal(why) => {
                tracing::error!("alarm SMTP: login check failed: {why}");
                ("", "454 4.7.0 Temporary authentication failure".to_string())
            }
            _ => (
                "login_failed",
                "535 5.7.8 Authentication credentials invalid".to_string(),
            ),
        };
        if !action.is_empty() {
            let who = format!("smtp:{}", cut(user, 64));
            self.receiver
                .audit
                .log(Some(&who), self.peer.ip(), action, "smtp");
        }
        self.refuse(&reply).await
    }

    /// STARTTLS: mailin's answer, then the handshake with the dashboard's certificate.
    async fn starttls(&mut self, line: &[u8]) -> Step {
        let Some(tls) = self.receiver.tls.clone() else {
            return self.refuse("502 5.5.1 STARTTLS is not offered").await;
        };
        if self.tls_active {
            return self.refuse("503 5.5.1 TLS is already active").await;
        }
        let response = self.session.process(line);
        if response.action != Action::UpgradeTls {
            return self.answer(&response).await;
        }
        self.answer(&response).await?;
        let reader = self.reader.take().ok_or(Stop::Close)?;
        if !reader.buffer().is_empty() {
            // Commands pipelined behind STARTTLS would run as if sent over TLS.
            return Err(Stop::Close);
        }
        let handshake = tokio::time::timeout(COMMAND_TIMEOUT, tls.accept(reader.into_inner()));
        let stream = match handshake.await {
            Ok(Ok(s)) => s,
            _ => return Err(Stop::Close),
        };
        let stream: Box<dyn Io> = Box::new(stream);
        self.reader = Some(BufReader::new(stream));
        self.tls_active = true;
        self.session.tls_active();
        self.lock().authenticated = None;
        Ok(())
    }

    /// MAIL: a declared SIZE over the cap is refused at once; the parameter is taken off
    /// before mailin parses the command.
    async fn mail(&mut self, line: &[u8]) -> Step {
        if self.messages >= MAX_MESSAGES {
            return self
                .close_with("421 4.7.0 Too many messages on one connection")
                .await;
        }
        let text = String::from_utf8_lossy(line).to_string();
        let mut kept = Vec::new();
        for word in text.trim_end().split(' ') {
            match word.to_ascii_uppercase().strip_prefix("SIZE=") {
                Some(n) => {
                    let declared: u64 = n.parse().unwrap_or(0);
                    if declared > self.receiver.max_message_bytes as u64 {
                        self.audit_refusal("declared size over the cap");
                        return self.refuse("552 5.3.4 Message too big").await;
                    }
                }
                None => kept.push(word),
            }
        }
        let stripped = format!("{}\r\n", kept.join(" "));
        self.forward(stripped.as_bytes()).await
    }

    /// Any other command: mailin's state machine answers it.
    async fn forward(&mut self, line: &[u8]) -> Step {
        let response = self.session.process(line);
        if response.code == 354 {
            self.in_data = true;
            self.mid_line = false;
            self.messages += 1;
        }
        if let Some(why) = self.lock().refused_rcpt.take() {
            self.audit_refusal(&why);
        }
        if response.is_error {
            self.lock().refusals += 1;
        }
        self.answer(&response).await?;
        if self.lock().refusals >= MAX_REFUSALS {
            return self.close_with("421 4.7.0 Too many errors, closing").await;
        }
        Ok(())
    }

    /// Parses a finished message on a blocking thread and hands it to the intake.
    async fn deliver(&mut self, message: Vec<u8>) -> Step {
        let cameras = std::mem::take(&mut self.lock().cameras);
        let r = self.receiver.clone();
        let parsed = tokio::task::spawn_blocking(move || {
            mime::contents(&message, r.max_pictures, r.max_megapixels)
        })
        .await;
        let contents = match parsed {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => {
                self.audit_refusal(&e.to_string());
                return self.refuse(&format!("554 5.6.0 {e}")).await;
            }
            Err(_) => return self.refuse("451 4.3.0 Local error, try again").await,
        };
        for why in &contents.refused {
            self.audit_refusal(&format!("picture refused: {why}"));
        }
        let received_ms = crate::base::clock::wall_ms();
        for camera in cameras {
            let arrival = Arrival {
                camera,
                pictures: contents.pictures.clone(),
                videos: contents.videos.clone(),
                subject: contents.subject.clone(),
                received_ms,
                from: self.peer.ip(),
            };
            if self.receiver.intake.submit(arrival).is_err() {
                return self.refuse("451 4.3.0 Busy, try again later").await;
            }
        }
        let n = contents.pictures.len();
        self.write(format!("250 2.0.0 Accepted, {n} picture(s)\r\n").as_bytes())
            .await
    }

    fn audit_refusal(&self, why: &str) {
        self.receiver.audit.log(
            None,
            self.peer.ip(),
            "alarm_refused",
            &format!("smtp: {why}"),
        );
    }

    /// Writes a refusal and counts it; closes after `MAX_REFUSALS`.
    async fn refuse(&mut self, reply: &str) -> Step {
        let refusals = {
            let mut s = self.lock();
            s.refusals += 1;
            s.refusals
        };
        if refusals >= MAX_REFUSALS {
            return self.close_with("421 4.7.0 Too many errors, closing").await;
        }
        self.write(format!("{reply}\r\n").as_bytes()).await
    }

    async fn close_with(&mut self, reply: &str) -> Step {
        let _ = self.write(format!("{reply}\r\n").as_bytes()).await;
        Err(Stop::Close)
    }

    /// Writes mailin's response; Close ends the connection after it.
    async fn answer(&mut self, response: &Response) -> Step {
        if response.action == Action::NoReply {
            return Ok(());
        }
        let bytes = response.buffer().map_err(|_| Stop::Close)?;
        self.write(&bytes).await?;
        match response.action {
            Action::Close => Err(Stop::Close),
            _ => Ok(()),
        }
    }

    async fn write(&mut self, bytes: &[u8]) -> Step {
        let reader = self.reader.as_mut().ok_or(Stop::Close)?;
        let stream = reader.get_mut();
        let wrote = tokio::time::timeout(COMMAND_TIMEOUT, async {
            stream.write_all(bytes).await?;
            stream.flush().await
        });
        match wrote.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(Stop::Close),
        }
    }
}

fn decode64(s: &str) -> Option<String> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.trim())
        .ok()?;
    String::from_utf8(bytes).ok()
}

fn verb_of(line: &[u8]) -> String {
    let end = line
        .iter()
        .position(|b| b.is_ascii_whitespace())
        .unwrap_or(line.len());
    String::from_utf8_lossy(&line[..end.min(16)]).to_ascii_uppercase()
}

fn cut(s: &str, max: usize) -> &str {
    let mut end = s.len().min(max);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}
