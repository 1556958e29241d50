//! Why a camera is not streaming, in words a homeowner can act on. The supervisor's
//! explained reason (technical, scrubbed of secrets) is sorted into one of a few kinds,
//! each with a sentence that says what to check; `/api/cameras`, the tile and the camera
//! page show the sentence beside the state, and the technical reason stays in the log
//! and in `last_error`.

/// The kind of a camera's last failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TroubleKind {
    /// The camera refused the user name or password (401).
    WrongPassword,
    /// The camera has no stream at the URL's path (404).
    NoSuchStream,
    /// Connection refused, no route, or the name does not resolve.
    HostUnreachable,
    /// Nothing answered in time: a switched-off camera behind a live switch, a firewall
    /// that drops, or a camera that accepts and then says nothing.
    NoAnswer,
    /// The camera refused RTP over TCP and offers only UDP.
    UdpOnly,
    /// The camera sends something other than H.264 or H.265.
    UnsupportedCodec,
    /// The camera refused a new stream for now (503): it serves as many as it allows, or
    /// it is still starting.
    Busy,
    /// The camera was streaming and stopped: end of stream, a stall or a lost connection.
    StreamStopped,
    /// Anything else; the technical reason is the only explanation.
    Other,
}

impl TroubleKind {
    /// Sorts a reason worded by the supervisor's explainer (or the supervisor itself).
    pub fn of_reason(reason: &str) -> Self {
        let lower = reason.to_ascii_lowercase();
        let has = |needle: &str| lower.contains(needle);
        if has("(401") || has("refused the credentials") {
            Self::WrongPassword
        } else if has("(404") || has("no stream at that path") {
            Self::NoSuchStream
        } else if has("(461") || has("offers only udp") || has("no supported stream was found") {
            Self::UdpOnly
        } else if has("only h.264 and h.265") || has("codec") {
            Self::UnsupportedCodec
        } else if has("503 response") || has("(503") || has("service unavailable") {
            Self::Busy
        } else if has("timed out")
            || has("timeout")
            || has("no answer")
            || has("did not answer")
            || has("receive an answer")
            || has("no video within")
            || has("udp packets")
        {
            Self::NoAnswer
        } else if has("cannot connect") || has("failed to connect") || has("unreachable") {
            Self::HostUnreachable
        } else if has("ended the stream") || has("stalled") || has("connection to") {
            Self::StreamStopped
        } else {
            Self::Other
        }
    }

    /// What to tell the person looking at the tile, for a camera at `endpoint`.
    pub fn words(self, endpoint: &str) -> String {
        match self {
            Self::WrongPassword => format!(
                "Wrong password: the camera at {endpoint} refused the user name or password."
            ),
            Self::NoSuchStream => format!(
                "No such stream: the camera at {endpoint} has nothing at this URL's path; check the path in its manual or find it by ONVIF."
            ),
            Self::HostUnreachable => format!(
                "Host unreachable: nothing accepts connections at {endpoint}; check that the camera is on, its address and the RTSP port."
            ),
            Self::NoAnswer => format!(
                "No answer: the camera at {endpoint} did not answer in time; check its power and network, or a firewall in between."
            ),
            Self::UdpOnly => format!(
                "The camera offers only UDP: the camera at {endpoint} refused RTP over TCP; set its transport to udp or auto."
            ),
            Self::UnsupportedCodec => format!(
                "Unsupported codec: the camera at {endpoint} sends video sentrix cannot record; set it to H.264 or H.265."
            ),
            Self::Busy => format!(
                "Camera busy: the camera at {endpoint} refused a new stream for now; it may already serve as many viewers as it allows, or still be starting. Close another viewer or try again."
            ),
            Self::StreamStopped => format!(
                "The stream stopped: the camera at {endpoint} stopped sending video; sentrix keeps reconnecting."
            ),
            Self::Other => format!("The camera at {endpoint} could not be read."),
        }
    }
}

/// A camera's last failure: its kind, the sentence for people, and the technical reason.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Trouble {
    pub kind: TroubleKind,
    /// For the dashboard: what happened and what to check.
    pub message: String,
    /// The explained technical reason (already scrubbed of secrets).
    pub detail: String,
}

impl Trouble {
    /// Sorts `reason` for a camera at `endpoint` ("host:port", or "the camera").
    pub fn from_reason(reason: &str, endpoint: &str) -> Self {
        let kind = TroubleKind::of_reason(reason);
        Self {
            kind,
            message: kind.words(endpoint),
            detail: reason.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TroubleKind::{self, *};

    #[test]
    fn reasons_from_both_clients_sort_into_kinds() {
        let cases: &[(&str, TroubleKind)] = &[
            (
                "camera at cam:554 refused the credentials for user \"admin\" (401 Unauthorized); check the user and password in its URL",
                WrongPassword,
            ),
            (
                "camera at cam:554 has no stream at that path (404 Not Found); check the URL's path",
                NoSuchStream,
            ),
            (
                "cannot connect to cam:554: connection refused, host unreachable or name not found (Failed to connect: Unable to connect to RTSP server: Connection refused (os error 111))",
                HostUnreachable,
            ),
            (
                "Could not receive an answer from the camera within 10 s",
                NoAnswer,
            ),
            (
                "cannot connect to 10.9.9.9:554: connection refused, host unreachable or name not found (Could not open resource for reading and writing.: Failed to connect. (Timeout while waiting for server response))",
                NoAnswer,
            ),
            (
                "camera at cam:554 did not answer in time (Could not read from resource.: Could not receive an answer from the camera within 10 s)",
                NoAnswer,
            ),
            ("no video within 15 s of connecting", NoAnswer),
            (
                "connection to cam:554 lost (Could not read from resource.: Could not receive any UDP packets for 5.0000 seconds, maybe your firewall is blocking it.)",
                NoAnswer,
            ),
            (
                "camera at cam:554 offers only UDP (461 Unsupported Transport); set transport: udp or auto",
                UdpOnly,
            ),
            (
                "Could not read from resource.: No supported stream was found. You might need to allow more transport protocols",
                UdpOnly,
            ),
            (
                "camera sends MP4V-ES, only H.264 and H.265 are supported",
                UnsupportedCodec,
            ),
            (
                "503 response to DESCRIBE CSeq=1: Unexpected RTSP response status",
                Busy,
            ),
            (
                "Could not read from resource.: Unhandled error (503 Service Unavailable)",
                Busy,
            ),
            ("camera ended the stream", StreamStopped),
            ("stalled: no video for 10.2 s", StreamStopped),
            (
                "connection to cam:554 lost (Could not read from the camera: Error reading)",
                StreamStopped,
            ),
            ("pipeline refused to start", Other),
        ];
        for (reason, kind) in cases {
            assert_eq!(TroubleKind::of_reason(reason), *kind, "{reason}");
        }
    }

    #[test]
    fn every_kind_names_the_camera_and_its_own_words() {
        let words: Vec<String> = [
            WrongPassword,
            NoSuchStream,
            HostUnreachable,
            NoAnswer,
            UdpOnly,
            UnsupportedCodec,
            Busy,
            StreamStopped,
        ]
        .iter()
        .map(|k| k.words("cam.lan:554"))
        .collect();
        for w in &words {
            assert!(w.contains("cam.lan:554"), "{w}");
        }
        assert!(words[0].starts_with("Wrong password"));
        assert!(words[4].starts_with("The camera offers only UDP"));
        let distinct: std::collections::HashSet<&String> = words.iter().collect();
        assert_eq!(distinct.len(), words.len());
    }
}
