//! QR codes for tokens and payloads: SVG, PNG and terminal output (feature `qr`).
//!
//! [`Qr::encode`] picks the smallest QR version for the content at the chosen
//! error-correction level ([`EcLevel::M`] by default) with the densest segmentation
//! (numeric, alphanumeric and byte segments mixed optimally; a token, having lowercase
//! letters, is byte mode). Every rendering keeps the standard 4-module quiet zone.
//!
//! # Sizes
//!
//! Measured by the tests in `tests/qr.rs` (modules without the quiet zone):
//!
//! | content | bytes | L | **M** (default) | Q | H |
//! |---|---|---|---|---|---|
//! | bare token | 53 | 3 (29×29) | **4 (33×33)** | 5 (37×37) | 6 (41×41) |
//! | link `https://mdm.example.com/enroll?token=…` | 90 | 5 (37×37) | **6 (41×41)** | 8 (49×49) | 9 (53×53) |
//! | Android JSON: component, checksum, download URL, token | 494 | 15 (77×77) | **17 (85×85)** | 21 (101×101) | 24 (113×113) |
//! | Android JSON with hidden WPA Wi-Fi, locale, time zone, three flags, two extras | 1079 | 23 (109×109) | **27 (125×125)** | 32 (145×145) | 37 (165×165) |
//!
//! Versions are `(width − 17) / 4`; add the quiet zone, 8 modules, for the printed size.
//! The bare token fits version 4 at level M (capacity 62 bytes) and version 3 at level L.
//! Android payloads are large because their key names are: print them at least 50 mm wide
//! (about 0.4 mm per module for version 17), and prefer level L when Wi-Fi settings and
//! extras push them past version 20.
//!
//! `qrcode`'s own segmentation is a heuristic that can cost a version (the bare token at
//! level L would be version 4); [`Qr::encode`] computes the optimal split and keeps whichever
//! of the two is smaller.
//!
//! The module matrix is as secret as the content it encodes: [`Qr`]'s `Debug` shows only
//! the version, size and level, and the matrix is zeroized on drop. The rendered SVG, PNG
//! and terminal text carry the token too (decodable, though not as text).
//!
//! ```
//! use onboarding_token::qr::{EcLevel, Qr, TerminalStyle};
//! # use onboarding_token::{Keyring, SigningKey, TokenId};
//! # let mut rng = rand_core::UnwrapErr(getrandom::SysRng);
//! # let token = Keyring::new(SigningKey::generate(&mut rng)).sign(&TokenId::generate(&mut rng));
//! let qr = Qr::encode(token.expose_secret())?;
//! assert_eq!((qr.version(), qr.width(), qr.ec_level()), (4, 33, EcLevel::M));
//! let svg = qr.to_svg();
//! assert!(svg.starts_with("<svg") && !svg.contains(token.expose_secret()));
//! let png = qr.to_png(8)?;
//! assert_eq!(&png[1..4], b"PNG");
//! print!("{}", qr.to_terminal(TerminalStyle::Ansi));
//! # Ok::<(), onboarding_token::qr::QrError>(())
//! ```

use std::fmt;
use std::fmt::Write as _;

use zeroize::Zeroize;

/// Modules of light border around every rendering, as the QR standard requires.
pub const QUIET_ZONE: usize = 4;

/// The largest PNG scale (pixels per module).
pub const MAX_SCALE: u32 = 64;

/// The error-correction level: how much of the code can be damaged and still read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub enum EcLevel {
    /// About 7% recoverable; the smallest code.
    L,
    /// About 15% recoverable (the default).
    #[default]
    M,
    /// About 25% recoverable.
    Q,
    /// About 30% recoverable; the largest code.
    H,
}

impl EcLevel {
    /// Every level, smallest code first.
    pub const ALL: [EcLevel; 4] = [Self::L, Self::M, Self::Q, Self::H];

    /// The letter (`L`, `M`, `Q`, `H`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::L => "L",
            Self::M => "M",
            Self::Q => "Q",
            Self::H => "H",
        }
    }

    fn to_qrcode(self) -> qrcode::EcLevel {
        match self {
            Self::L => qrcode::EcLevel::L,
            Self::M => qrcode::EcLevel::M,
            Self::Q => qrcode::EcLevel::Q,
            Self::H => qrcode::EcLevel::H,
        }
    }
}

impl fmt::Display for EcLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for EcLevel {
    type Err = QrError;
    /// Parses `L`, `M`, `Q` or `H`, in either case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
            .ok_or(QrError::UnknownEcLevel)
    }
}

/// A QR code could not be made or rendered. Messages never contain the content.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QrError {
    /// The content does not fit in a QR code (version 40) at this level.
    #[error("{len} bytes do not fit in a QR code at error-correction level {ec_level}")]
    TooLong {
        /// The content's length in bytes.
        len: usize,
        /// The level asked for.
        ec_level: EcLevel,
    },
    /// An error-correction level name was not recognised.
    #[error("unknown error-correction level; expected L, M, Q or H")]
    UnknownEcLevel,
    /// The PNG scale is zero or over [`MAX_SCALE`].
    #[error("PNG scale must be 1 to {MAX_SCALE} pixels per module, not {scale}")]
    BadScale {
        /// The scale asked for.
        scale: u32,
    },
    /// The QR encoder refused the content for another reason.
    #[error("QR encoding failed")]
    Encoding,
    /// The PNG encoder failed.
    #[error("PNG encoding failed")]
    Png(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// How [`Qr::to_terminal`] draws, two module rows per text line with half blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TerminalStyle {
    /// Black on white forced with ANSI colours: reads on any terminal theme.
    #[default]
    Ansi,
    /// Blocks for dark modules, no colours: for light-background terminals and files.
    DarkOnLight,
    /// Blocks for light modules, no colours: for dark-background terminals.
    LightOnDark,
}

/// An encoded QR code: a square of dark and light modules.
#[derive(Clone, PartialEq, Eq)]
pub struct Qr {
    /// Row-major, `1` = dark, without the quiet zone.
    modules: Vec<u8>,
    width: usize,
    version: u8,
    ec_level: EcLevel,
}

impl Qr {
    /// Encodes `content` at level M.
    pub fn encode(content: &str) -> Result<Self, QrError> {
        Self::encode_with(content, EcLevel::M)
    }

    /// Encodes `content` at `ec_level`, in the smallest version that holds it.
    pub fn encode_with(content: &str, ec_level: EcLevel) -> Result<Self, QrError> {
        let ec = ec_level.to_qrcode();
        let too_long = || QrError::TooLong {
            len: content.len(),
            ec_level,
        };
        let data = content.as_bytes();
        // No QR code holds more than 7089 characters (all digits, version 40, level L).
        if data.len() > 7089 {
            return Err(too_long());
        }
        // Our segmentation is optimal; `qrcode`'s own is a heuristic that sometimes costs a
        // version (the bare token at level L). Keep whichever is smaller.
        let ours = optimal_bits(data, ec);
        let theirs = qrcode::bits::encode_auto(data, ec).ok();
        let bits = match (ours, theirs) {
            (Some(a), Some(b)) if version_number(b.version()) < version_number(a.version()) => b,
            (Some(a), _) => a,
            (None, Some(b)) => b,
            (None, None) => return Err(too_long()),
        };
        let code = qrcode::QrCode::with_bits(bits, ec).map_err(|e| match e {
            qrcode::types::QrError::DataTooLong => too_long(),
            _ => QrError::Encoding,
        })?;
        let version =
            u8::try_from(version_number(code.version())).map_err(|_| QrError::Encoding)?;
        let width = code.width();
        let modules = code
            .into_colors()
            .into_iter()
            .map(|c| u8::from(c == qrcode::Color::Dark))
            .collect();
        Ok(Self {
            modules,
            width,
            version,
            ec_level,
        })
    }

    /// The QR version, 1 to 40.
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Modules per side, without the quiet zone (`17 + 4 × version`).
    pub fn width(&self) -> usize {
        self.width
    }

    /// Modules per side with the quiet zone.
    pub fn width_with_quiet_zone(&self) -> usize {
        self.width + 2 * QUIET_ZONE
    }

    /// The error-correction level.
    pub fn ec_level(&self) -> EcLevel {
        self.ec_level
    }

    /// Whether the module at column `x`, row `y` (quiet zone excluded) is dark; `false`
    /// outside the code.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.modules[y * self.width + x] == 1
    }

    /// Like [`is_dark`](Qr::is_dark), in coordinates that include the quiet zone.
    fn is_dark_padded(&self, x: usize, y: usize) -> bool {
        x >= QUIET_ZONE && y >= QUIET_ZONE && self.is_dark(x - QUIET_ZONE, y - QUIET_ZONE)
    }

    /// An SVG document 8 pixels per module; see [`to_svg_sized`](Qr::to_svg_sized).
    pub fn to_svg(&self) -> String {
        self.to_svg_sized(8)
    }

    /// An SVG document (no XML declaration, so it also works inline in HTML): a white
    /// background with the quiet zone and one black path, `module_px` pixels per module in
    /// its `width`/`height`, scalable through its `viewBox`.
    pub fn to_svg_sized(&self, module_px: u32) -> String {
        let side = self.width_with_quiet_zone();
        let px = side as u64 * u64::from(module_px.max(1));
        let mut out = String::with_capacity(256 + self.width * self.width * 3);
        let _ = write!(
            out,
            r##"<svg xmlns="http://www.w3.org/2000/svg" version="1.1" width="{px}" height="{px}" viewBox="0 0 {side} {side}" shape-rendering="crispEdges" role="img" aria-label="QR code"><rect width="{side}" height="{side}" fill="#fff"/><path fill="#000" d=""##
        );
        for y in 0..self.width {
            let mut x = 0;
            while x < self.width {
                if !self.is_dark(x, y) {
                    x += 1;
                    continue;
                }
                let start = x;
                while x < self.width && self.is_dark(x, y) {
                    x += 1;
                }
                let _ = write!(
                    out,
                    "M{} {}h{}v1h-{}z",
                    start + QUIET_ZONE,
                    y + QUIET_ZONE,
                    x - start,
                    x - start
                );
            }
        }
        out.push_str("\"/></svg>");
        out
    }

    /// A 1-bit greyscale PNG, `scale` pixels per module (1 to [`MAX_SCALE`]), quiet zone
    /// included.
    pub fn to_png(&self, scale: u32) -> Result<Vec<u8>, QrError> {
        if scale == 0 || scale > MAX_SCALE {
            return Err(QrError::BadScale { scale });
        }
        let scale = scale as usize;
        let side = self.width_with_quiet_zone() * scale;
        let side_u32 = u32::try_from(side).map_err(|_| QrError::BadScale {
            scale: scale as u32,
        })?;
        let row_bytes = side.div_ceil(8);
        let mut pixels = vec![0u8; row_bytes * side];
        for py in 0..side {
            let row = &mut pixels[py * row_bytes..(py + 1) * row_bytes];
            for px in 0..side {
                // 1 = white in greyscale.
                if !self.is_dark_padded(px / scale, py / scale) {
                    row[px / 8] |= 0x80 >> (px % 8);
                }
            }
        }
        let mut out = Vec::new();
        let png_err = |e: png::EncodingError| QrError::Png(Box::new(e));
        {
            let mut encoder = png::Encoder::new(&mut out, side_u32, side_u32);
            encoder.set_color(png::ColorType::Grayscale);
            encoder.set_depth(png::BitDepth::One);
            let mut writer = encoder.write_header().map_err(png_err)?;
            writer.write_image_data(&pixels).map_err(png_err)?;
            writer.finish().map_err(png_err)?;
        }
        pixels.zeroize();
        Ok(out)
    }

    /// Text for a terminal: two module rows per line with Unicode half blocks (`▀ ▄ █`),
    /// quiet zone included, each line ending in `\n`.
    pub fn to_terminal(&self, style: TerminalStyle) -> String {
        let side = self.width_with_quiet_zone();
        let mut out = String::with_capacity((side + 16) * side.div_ceil(2) * 3);
        for y in (0..side).step_by(2) {
            if style == TerminalStyle::Ansi {
                // Black foreground on bright white background.
                out.push_str("\x1b[30;107m");
            }
            for x in 0..side {
                let (top, bottom) = (self.is_dark_padded(x, y), self.is_dark_padded(x, y + 1));
                let (top, bottom) = match style {
                    TerminalStyle::Ansi | TerminalStyle::DarkOnLight => (top, bottom),
                    TerminalStyle::LightOnDark => (!top, !bottom && y + 1 < side),
                };
                out.push(match (top, bottom) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                });
            }
            if style == TerminalStyle::Ansi {
                out.push_str("\x1b[0m");
            }
            out.push('\n');
        }
        out
    }
}

/// A segment mode of the QR standard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Numeric,
    Alphanumeric,
    Byte,
}

const MODES: [Mode; 3] = [Mode::Numeric, Mode::Alphanumeric, Mode::Byte];

impl Mode {
    fn index(self) -> usize {
        self as usize
    }

    /// Character-count bits in a version class (1-9, 10-26, 27-40).
    fn count_bits(self, class: usize) -> usize {
        match self {
            Mode::Numeric => [10, 12, 14][class],
            Mode::Alphanumeric => [9, 11, 13][class],
            Mode::Byte => [8, 16, 16][class],
        }
    }

    fn allows(self, b: u8) -> bool {
        match self {
            Mode::Numeric => b.is_ascii_digit(),
            Mode::Alphanumeric => {
                b.is_ascii_digit() || b.is_ascii_uppercase() || b" $%*+-./:".contains(&b)
            }
            Mode::Byte => true,
        }
    }

    /// Cost of one character in sixths of a bit (10 bits per 3 digits, 11 per 2
    /// alphanumerics, 8 per byte).
    fn char_cost(self) -> usize {
        match self {
            Mode::Numeric => 20,
            Mode::Alphanumeric => 33,
            Mode::Byte => 48,
        }
    }

    fn data_bits(self, n: usize) -> usize {
        match self {
            Mode::Numeric => 10 * (n / 3) + [0, 4, 7][n % 3],
            Mode::Alphanumeric => 11 * (n / 2) + 6 * (n % 2),
            Mode::Byte => 8 * n,
        }
    }
}

fn version_number(v: qrcode::Version) -> i16 {
    match v {
        qrcode::Version::Normal(n) => n,
        qrcode::Version::Micro(_) => 0,
    }
}

/// The cheapest split of `data` into numeric, alphanumeric and byte segments for a version
/// class (dynamic programming over per-character modes, costs in sixths of a bit).
fn segment(data: &[u8], class: usize) -> Vec<(Mode, std::ops::Range<usize>)> {
    const NONE: usize = usize::MAX / 4;
    let head = MODES.map(|m| (4 + m.count_bits(class)) * 6);
    let mut costs = head;
    // came_from[i][m]: the mode character i is encoded in when the state after it is `m`.
    let mut came_from: Vec<[Option<Mode>; 3]> = Vec::with_capacity(data.len());
    for &b in data {
        let mut cur = [NONE; 3];
        let mut from = [None; 3];
        for m in MODES {
            if m.allows(b) {
                cur[m.index()] = costs[m.index()] + m.char_cost();
                from[m.index()] = Some(m);
            }
        }
        let ended = cur;
        for to in MODES {
            for at in MODES {
                if from[at.index()] != Some(at) {
                    continue;
                }
                let switched = ended[at.index()].div_ceil(6) * 6 + head[to.index()];
                if switched < cur[to.index()] {
                    cur[to.index()] = switched;
                    from[to.index()] = Some(at);
                }
            }
        }
        came_from.push(from);
        costs = cur;
    }
    let mut state = MODES
        .into_iter()
        .min_by_key(|m| costs[m.index()])
        .unwrap_or(Mode::Byte);
    let mut modes = vec![Mode::Byte; data.len()];
    for i in (0..data.len()).rev() {
        state = came_from[i][state.index()].unwrap_or(Mode::Byte);
        modes[i] = state;
    }
    let mut segments: Vec<(Mode, std::ops::Range<usize>)> = Vec::new();
    for (i, &m) in modes.iter().enumerate() {
        match segments.last_mut() {
            Some((last, range)) if *last == m => range.end = i + 1,
            _ => segments.push((m, i..i + 1)),
        }
    }
    segments
}

/// The bit stream in the smallest version, using the optimal segmentation.
fn optimal_bits(data: &[u8], ec: qrcode::EcLevel) -> Option<qrcode::bits::Bits> {
    for (class, versions) in [(0, 1..=9), (1, 10..=26), (2, 27..=40)] {
        let segments = segment(data, class);
        let len: usize = segments
            .iter()
            .map(|(m, r)| 4 + m.count_bits(class) + m.data_bits(r.len()))
            .sum();
        for v in versions {
            let version = qrcode::Version::Normal(v);
            let capacity = qrcode::bits::Bits::new(version).max_len(ec).ok()?;
            if len > capacity {
                continue;
            }
            let mut bits = qrcode::bits::Bits::new(version);
            for (mode, range) in &segments {
                let chunk = &data[range.clone()];
                match mode {
                    Mode::Numeric => bits.push_numeric_data(chunk),
                    Mode::Alphanumeric => bits.push_alphanumeric_data(chunk),
                    Mode::Byte => bits.push_byte_data(chunk),
                }
                .ok()?;
            }
            bits.push_terminator(ec).ok()?;
            return Some(bits);
        }
    }
    None
}

impl Drop for Qr {
    fn drop(&mut self) {
        self.modules.zeroize();
    }
}

impl fmt::Debug for Qr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Qr")
            .field("version", &self.version)
            .field("width", &self.width)
            .field("ec_level", &self.ec_level)
            .finish_non_exhaustive()
    }
}
