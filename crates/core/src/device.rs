//! What a person sees of a `User-Agent` header: a browser and a system from fixed lists
//! ("Firefox on Windows", "Safari on iPhone"), or "an unrecognised browser" (checklist S9.2).
//!
//! The header is the client's own text, so an attacker who resets a password or signs in
//! chooses it. It must never reach a security email or the sessions page as text, even
//! escaped: "Call 1-800-555-0100" is a phishing line without any markup. So nothing of
//! the header is copied: the classifier only answers which of a few known names it
//! contains, and every word of the result comes from the `&'static str`s below.
//!
//! Written by hand rather than with a parser crate: the one maintained-looking Rust
//! parser (`woothee`) had its last release in 2021, predates Chromium's "Edg/" and
//! reduced user agents, and would bring `regex` into the core; we need only a coarse
//! answer from a closed vocabulary, which a few ordered substring tests give and the unit
//! tests below pin down.

/// A browser family doorman names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Browser {
    Edge,
    Opera,
    SamsungInternet,
    Firefox,
    Chrome,
    Safari,
}

impl Browser {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Edge => "Edge",
            Self::Opera => "Opera",
            Self::SamsungInternet => "Samsung Internet",
            Self::Firefox => "Firefox",
            Self::Chrome => "Chrome",
            Self::Safari => "Safari",
        }
    }
}

/// An operating system (or device) doorman names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum System {
    Windows,
    MacOs,
    Linux,
    ChromeOs,
    Android,
    IPhone,
    IPad,
}

impl System {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Windows => "Windows",
            Self::MacOs => "macOS",
            Self::Linux => "Linux",
            Self::ChromeOs => "ChromeOS",
            Self::Android => "Android",
            Self::IPhone => "iPhone",
            Self::IPad => "iPad",
        }
    }
}

/// What a `User-Agent` header says, reduced to names from fixed lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Device {
    pub browser: Option<Browser>,
    pub system: Option<System>,
}

/// Longer headers are not looked at: no browser sends one, and it bounds the work.
const MAX_LEN: usize = 1024;

impl Device {
    pub fn from_user_agent(user_agent: &str) -> Self {
        if user_agent.len() > MAX_LEN || !user_agent.starts_with("Mozilla/5.0 (") {
            // Every browser we name starts so; curl, scripts and bots do not.
            return Self { browser: None, system: None };
        }
        Self { browser: browser(user_agent), system: system(user_agent) }
    }

    /// "Firefox on Windows", "Chrome" (system unknown), "an unrecognised browser on Linux",
    /// or "an unrecognised browser". Lower case at the start: it reads inside a sentence.
    pub fn describe(&self) -> String {
        match (self.browser, self.system) {
            (Some(b), Some(s)) => format!("{} on {}", b.name(), s.name()),
            (Some(b), None) => b.name().to_owned(),
            (None, Some(s)) => format!("an unrecognised browser on {}", s.name()),
            (None, None) => "an unrecognised browser".to_owned(),
        }
    }

    /// The same, starting with a capital letter, for a heading or a list.
    pub fn title(&self) -> String {
        let text = self.describe();
        match text.strip_prefix("an unrecognised") {
            Some(rest) => format!("Unrecognised{rest}"),
            None => text,
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Order matters: Edge, Opera and Samsung Internet also say "Chrome/" and "Safari/";
/// Chrome also says "Safari/"; Firefox and Chrome on iOS say "Safari/" too.
fn browser(ua: &str) -> Option<Browser> {
    let has = |token: &str| ua.contains(token);
    if has("Edg/") || has("EdgA/") || has("EdgiOS/") || has("Edge/") {
        Some(Browser::Edge)
    } else if has("OPR/") || has("OPT/") || has("OPX/") {
        Some(Browser::Opera)
    } else if has("SamsungBrowser/") {
        Some(Browser::SamsungInternet)
    } else if has("Firefox/") || has("FxiOS/") {
        Some(Browser::Firefox)
    } else if has("Chrome/") || has("CriOS/") || has("Chromium/") {
        Some(Browser::Chrome)
    } else if has("Safari/") && has("Version/") && has("AppleWebKit/") {
        Some(Browser::Safari)
    } else {
        None
    }
}

/// Only the platform part, the first parenthesis, is read: a system named later in the
/// header (where a hostile client could write anything) does not count.
fn system(ua: &str) -> Option<System> {
    let platform = ua.split_once('(').and_then(|(_, rest)| rest.split_once(')')).map(|(inside, _)| inside)?;
    let has = |token: &str| platform.contains(token);
    // iOS and iPadOS say "like Mac OS X", and Android says "Linux": test those first.
    if has("iPhone") || has("iPod") {
        Some(System::IPhone)
    } else if has("iPad") {
        Some(System::IPad)
    } else if has("Android") {
        Some(System::Android)
    } else if has("Windows") {
        Some(System::Windows)
    } else if has("CrOS") {
        Some(System::ChromeOs)
    } else if has("Macintosh") || has("Mac OS X") {
        Some(System::MacOs)
    } else if has("Linux") || has("X11") {
        Some(System::Linux)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn described(ua: &str) -> String {
        Device::from_user_agent(ua).describe()
    }

    /// S9.2: current browsers, as they sent their headers in 2026.
    #[test]
    fn s9_2_current_browsers_are_named_with_their_system() {
        let cases = [
            // Chrome on the desktop and on phones (reduced user agents: fixed versions).
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
                "Chrome on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
                "Chrome on macOS",
            ),
            ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36", "Chrome on Linux"),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/142.0.7444.77 Mobile/15E148 Safari/604.1",
                "Chrome on iPhone",
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36",
                "Chrome on ChromeOS",
            ),
            // Firefox.
            ("Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0", "Firefox on Windows"),
            ("Mozilla/5.0 (Macintosh; Intel Mac OS X 10.15; rv:145.0) Gecko/20100101 Firefox/145.0", "Firefox on macOS"),
            ("Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:145.0) Gecko/20100101 Firefox/145.0", "Firefox on Linux"),
            ("Mozilla/5.0 (Android 15; Mobile; rv:145.0) Gecko/145.0 Firefox/145.0", "Firefox on Android"),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) FxiOS/145.0 Mobile/15E148 Safari/605.1.15",
                "Firefox on iPhone",
            ),
            // Safari.
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1",
                "Safari on iPhone",
            ),
            (
                "Mozilla/5.0 (iPad; CPU OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 Safari/604.1",
                "Safari on iPad",
            ),
            // Edge, Opera, Samsung Internet.
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Safari/537.36 Edg/142.0.0.0",
                "Edge on macOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/142.0.0.0 Mobile Safari/537.36 EdgA/142.0.0.0",
                "Edge on Android",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 EdgiOS/142.0.3595.65 Mobile/15E148 Safari/605.1.15",
                "Edge on iPhone",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/141.0.0.0 Safari/537.36 OPR/124.0.0.0",
                "Opera on Windows",
            ),
            (
                "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/28.0 Chrome/130.0.0.0 Mobile Safari/537.36",
                "Samsung Internet on Android",
            ),
        ];
        for (ua, expected) in cases {
            assert_eq!(described(ua), expected, "{ua}");
        }
    }

    /// S9.2: what is not a browser we know is named as such, and nothing of it is repeated.
    #[test]
    fn s9_2_hostile_and_unknown_headers_give_an_unrecognised_browser() {
        let cases = [
            "",
            "Mozilla/5.0 <script>alert(1)</script> Call 1-800-555-0100 or visit evil.example/secure",
            "Mozilla/5.0 scriptalert(1)/script Call 1-800-555-0100 or visit evil.example/secu",
            "Call 1-800-555-0100 Chrome/142.0 (Windows NT 10.0)",
            "curl/8.11.1",
            "python-requests/2.32.3",
            "doorman-worker",
            "Mozilla/5.0",
            "Mozilla/5.0 (",
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "Mozilla/5.0 (\u{0}\r\nBcc: x@example.com) <b>bold</b>",
            "Mozilla/5.0 (Visit evil.example; call 1-800-555-0100)",
        ];
        for ua in cases {
            assert_eq!(described(ua), "an unrecognised browser", "{ua:?}");
        }
        // A system named only outside the platform parenthesis does not count.
        assert_eq!(described("Mozilla/5.0 (evil.example) Windows Chrome/1"), "Chrome");
        // An oversized header is not read at all.
        let long = format!("Mozilla/5.0 (Windows NT 10.0) Chrome/1 {}", "x".repeat(MAX_LEN));
        assert_eq!(described(&long), "an unrecognised browser");
    }

    /// Whatever the header, every word of the result comes from the fixed lists.
    #[test]
    fn s9_2_only_fixed_names_ever_appear() {
        let browsers = ["Edge", "Opera", "Samsung Internet", "Firefox", "Chrome", "Safari", "an unrecognised browser"];
        let systems = ["Windows", "macOS", "Linux", "ChromeOS", "Android", "iPhone", "iPad"];
        let mut allowed = Vec::new();
        for b in browsers {
            allowed.push(b.to_owned());
            for s in systems {
                allowed.push(format!("{b} on {s}"));
            }
        }
        let pieces = [
            "Mozilla/5.0 (",
            "Windows NT 10.0; ",
            "iPhone; ",
            "Android 15; ",
            "Macintosh; ",
            "X11; Linux; ",
            "CrOS; ",
            ")",
            " Chrome/1",
            " Firefox/2",
            " Edg/3",
            " OPR/4",
            " Version/5 Safari/6 AppleWebKit/7",
            " 1-800-555-0100 <script>",
            " evil.example",
        ];
        // Every ordered choice of up to four pieces: a few thousand headers.
        let mut stack: Vec<Vec<usize>> = vec![vec![]];
        while let Some(chosen) = stack.pop() {
            let ua: String = chosen.iter().map(|&i| pieces[i]).collect();
            let device = Device::from_user_agent(&ua);
            let text = device.describe();
            assert!(allowed.contains(&text), "{ua:?} gave {text:?}");
            assert!(!text.contains("800") && !text.contains("evil") && !text.contains('<'), "{ua:?}");
            assert!(device.title().starts_with(char::is_uppercase), "{ua:?}");
            if chosen.len() < 4 {
                for i in 0..pieces.len() {
                    let mut next = chosen.clone();
                    next.push(i);
                    stack.push(next);
                }
            }
        }
    }

    #[test]
    fn titles_start_with_a_capital() {
        assert_eq!(Device::from_user_agent("curl/8").title(), "Unrecognised browser");
        assert_eq!(Device::from_user_agent("Mozilla/5.0 (Windows NT 10.0) Gecko").title(), "Unrecognised browser on Windows");
        let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:145.0) Gecko/20100101 Firefox/145.0";
        assert_eq!(Device::from_user_agent(firefox).title(), "Firefox on Windows");
        assert_eq!(Device::from_user_agent(firefox).to_string(), "Firefox on Windows");
    }
}
