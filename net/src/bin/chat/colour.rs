//! Who is who: a colour per member, from its identity.
//!
//! A name's colour must read on a dark background and on a light one: its
//! contrast against black and against white (as WCAG measures contrast,
//! by relative luminance) is at least 3:1 both ways, which holds for a
//! relative luminance between 0.1 and 0.3. On a terminal that says it
//! shows 24-bit colour (`COLORTERM=truecolor` or `24bit`) a member gets
//! one of millions of such colours; otherwise one of the [`PALETTE`]'s 66
//! entries of the xterm 256-colour cube.

use gossip_chat::NodeKey;
use std::ffi::OsStr;

/// How names are coloured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Colours {
    /// Not at all: stdout is not a terminal, or `NO_COLOR` is set.
    Off,
    /// From [`PALETTE`], the xterm 256-colour cube.
    Cube,
    /// 24-bit colours ([`rgb_of`]).
    Rgb,
}

impl Colours {
    /// Whether names are coloured at all.
    pub fn on(self) -> bool {
        self != Colours::Off
    }
}

/// The xterm colour cube's six channel levels, linearised (sRGB to linear
/// light), in millionths: `0, 95, 135, 175, 215, 255`.
const CUBE_LINEAR: [u64; 6] = [0, 114_435, 242_281, 428_690, 679_542, 1_000_000];

/// Relative luminance, in millionths, of linear channels in millionths.
const fn luminance(r: u64, g: u64, b: u64) -> u64 {
    (2126 * r + 7152 * g + 722 * b) / 10_000
}

/// The readable band of relative luminance, in millionths: 3:1 against
/// black at its low end ((0.1 + 0.05) / 0.05), 3:1 against white at its
/// high end (1.05 / (0.3 + 0.05)).
const READABLE: (u64, u64) = (100_000, 300_000);

/// How many entries of the colour cube are readable and not grey.
const PALETTE_LEN: usize = 66;

/// The colours a member's name can take on a 256-colour terminal: the
/// entries of the xterm 256-colour cube (`16 + 36r + 6g + b`) that are not
/// grey and whose luminance is in the readable band (3:1 against both
/// black and white). 66 colours: two members collide about once in 66.
pub const PALETTE: [u8; PALETTE_LEN] = palette();

const fn palette() -> [u8; PALETTE_LEN] {
    let mut out = [0u8; PALETTE_LEN];
    let mut n = 0;
    let mut i = 0;
    while i < 216 {
        let (r, g, b) = (i / 36, i / 6 % 6, i % 6);
        let l = luminance(CUBE_LINEAR[r], CUBE_LINEAR[g], CUBE_LINEAR[b]);
        if !(r == g && g == b) && l >= READABLE.0 && l <= READABLE.1 {
            out[n] = (16 + i) as u8;
            n += 1;
        }
        i += 1;
    }
    assert!(n == PALETTE_LEN);
    out
}

/// How to colour names: not at all unless stdout is a terminal and
/// `NO_COLOR` is unset or empty (<https://no-color.org>); in 24-bit colour
/// when `COLORTERM` says `truecolor` or `24bit`, else from the 256-colour
/// cube.
pub fn wanted(
    stdout_is_terminal: bool,
    no_color: Option<&OsStr>,
    colorterm: Option<&OsStr>,
) -> Colours {
    if !stdout_is_terminal || !no_color.is_none_or(OsStr::is_empty) {
        return Colours::Off;
    }
    let truecolor = colorterm
        .and_then(OsStr::to_str)
        .is_some_and(|v| v.eq_ignore_ascii_case("truecolor") || v.eq_ignore_ascii_case("24bit"));
    if truecolor {
        Colours::Rgb
    } else {
        Colours::Cube
    }
}

/// [`wanted`] for this process's stdout and environment.
pub fn wanted_here() -> Colours {
    use std::io::IsTerminal;
    wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("COLORTERM").as_deref(),
    )
}

/// The colour of a member on a 256-colour terminal, an xterm index from
/// [`PALETTE`]: a hash of its identity (id and life), so that two
/// members with the same name show in different colours (65 times in 66)
/// and a member keeps its colour for its whole life, on every node.
pub fn colour_of(node: NodeKey) -> u8 {
    PALETTE[((identity_hash(node) >> 32) % PALETTE_LEN as u64) as usize]
}

/// The colour of a member on a 24-bit terminal: drawn from a hash of its
/// identity among the colours that are readable (luminance in the band
/// [`PALETTE`] uses) and not greyish (channels at least 64 apart), so
/// two members practically never share one. The same on every node.
pub fn rgb_of(node: NodeKey) -> (u8, u8, u8) {
    let mut h = identity_hash(node);
    for _ in 0..RGB_TRIES {
        let [r, g, b, ..] = h.to_le_bytes();
        if readable_rgb(r, g, b) {
            return (r, g, b);
        }
        h = mix(h ^ 0x9e37_79b9_7f4a_7c15);
    }
    cube_rgb(colour_of(node))
}

/// Draws [`rgb_of`] makes before it falls back to the palette's colour;
/// about a fifth of all colours pass, so the fallback is a one in a
/// million event.
const RGB_TRIES: usize = 64;

/// Whether a 24-bit colour is in the readable band and not greyish.
fn readable_rgb(r: u8, g: u8, b: u8) -> bool {
    let (lo, hi) = (r.min(g).min(b), r.max(g).max(b));
    let l = luminance(linear(r), linear(g), linear(b));
    hi - lo >= 64 && (READABLE.0..=READABLE.1).contains(&l)
}

/// An sRGB channel as linear light, in millionths.
fn linear(c: u8) -> u64 {
    let c = f64::from(c) / 255.0;
    let l = if c <= 0.04045 {
        c / 12.92
    } else {
        ((c + 0.055) / 1.055).powf(2.4)
    };
    (l * 1e6).round() as u64
}

/// The 24-bit colour of an xterm colour-cube index.
fn cube_rgb(index: u8) -> (u8, u8, u8) {
    const LEVELS: [u8; 6] = [0, 95, 135, 175, 215, 255];
    let i = usize::from(index.saturating_sub(16)).min(215);
    (LEVELS[i / 36], LEVELS[i / 6 % 6], LEVELS[i % 6])
}

/// A member's identity in short: four hex digits of a hash of its id
/// and life, shown beside its name so that two `bob`s can be told apart in
/// words too (and without colour). The same on every node.
pub fn short_id(node: NodeKey) -> String {
    format!("{:04x}", identity_hash(node) & 0xffff)
}

/// A well-mixed hash of a member's identity (id and life).
fn identity_hash(node: NodeKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(&node.id.0);
    eat(&node.incarnation.to_le_bytes());
    // A finalising mix: FNV's low bits alone spread poorly.
    mix(h)
}

/// Murmur3's 64-bit finaliser.
fn mix(h: u64) -> u64 {
    let h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// `name` in the member's colour, as `colours` says.
pub fn paint(colours: Colours, node: NodeKey, name: &str) -> String {
    match colours {
        Colours::Off => name.to_owned(),
        Colours::Cube => format!("\x1b[38;5;{}m{name}\x1b[0m", colour_of(node)),
        Colours::Rgb => {
            let (r, g, b) = rgb_of(node);
            format!("\x1b[38;2;{r};{g};{b}m{name}\x1b[0m")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gossip_chat::Id;
    use std::collections::BTreeSet;
    use std::net::SocketAddr;

    /// The key of a member without a key pair, by the port it listens on.
    fn key(port: u16, incarnation: u64) -> NodeKey {
        NodeKey {
            id: Id::of_addr(SocketAddr::from(([127, 0, 0, 1], port))),
            incarnation,
        }
    }

    /// Contrast (WCAG) of an sRGB colour against black and against white.
    fn contrasts((r, g, b): (u8, u8, u8)) -> (f64, f64) {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let l = 0.2126 * lin(r) + 0.7152 * lin(g) + 0.0722 * lin(b);
        ((l + 0.05) / 0.05, 1.05 / (l + 0.05))
    }

    /// Pairs of `members` that share a colour, under `colour`.
    fn alike<T: PartialEq>(members: &[NodeKey], colour: impl Fn(NodeKey) -> T) -> usize {
        let c: Vec<T> = members.iter().map(|&k| colour(k)).collect();
        (0..c.len())
            .map(|i| (i + 1..c.len()).filter(|&j| c[i] == c[j]).count())
            .sum()
    }

    #[test]
    fn colours_follow_the_identity_not_the_name() {
        // The same identity always gets the same colour, in either mode...
        for k in [key(7000, 1), key(7001, 9), key(65535, u64::MAX)] {
            assert_eq!(colour_of(k), colour_of(k));
            assert_eq!(rgb_of(k), rgb_of(k));
            assert_eq!(paint(Colours::Rgb, k, "bob"), paint(Colours::Rgb, k, "bob"));
        }
        // ...and identities spread over the palette.
        let seen: BTreeSet<u8> = (0..24).map(|p| colour_of(key(7000 + p, 1))).collect();
        assert!(seen.len() >= 14, "colours used: {seen:?}");
        let lives: BTreeSet<u8> = (0..24).map(|i| colour_of(key(7000, i))).collect();
        assert!(lives.len() >= 14, "colours used: {lives:?}");
        // Every colour comes from the palette, and the whole palette is used.
        let all: BTreeSet<u8> = (0..2000).map(|p| colour_of(key(9000 + p, 1))).collect();
        assert_eq!(all, PALETTE.iter().copied().collect());
    }

    #[test]
    fn fifty_members_named_bob_rarely_share_a_colour() {
        // 50 members: 45 on neighbouring ports, 5 lives of one member.
        let mut bobs: Vec<NodeKey> = (0..45).map(|p| key(7000 + p, 1)).collect();
        bobs.extend((2..7).map(|i| key(7000, i)));
        let pairs = 50 * 49 / 2;
        // 256 colours: about one pair in 66 alike (19 of 1225 expected,
        // 18 measured); a hash that spread worse would show.
        let cube = alike(&bobs, colour_of);
        assert!(cube <= pairs / 40, "{cube} of {pairs} pairs alike");
        // 24-bit: none alike (millions of colours to draw from).
        assert_eq!(alike(&bobs, rgb_of), 0);
        // And over many more pairs, the cube's rate is about one in 66
        // (1232 of 79 800 measured); 24-bit colours none.
        let many: Vec<NodeKey> = (0..400).map(|p| key(20_000 + p, 1)).collect();
        let (alike_cube, all) = (alike(&many, colour_of), 400 * 399 / 2);
        assert!(
            (all / 90..all / 50).contains(&alike_cube),
            "{alike_cube} of {all} pairs alike"
        );
        assert!(alike(&many, rgb_of) <= 1, "24-bit colours alike");
    }

    #[test]
    fn two_members_named_bob_look_different() {
        // Two bobs on neighbouring ports, and a bob restarted (a new life
        // of the same member): the names are the same, the colours not.
        let (a, b) = (key(7001, 1), key(7002, 1));
        assert_ne!(colour_of(a), colour_of(b));
        assert_ne!(
            paint(Colours::Cube, a, "bob"),
            paint(Colours::Cube, b, "bob")
        );
        assert_ne!(paint(Colours::Rgb, a, "bob"), paint(Colours::Rgb, b, "bob"));
        let restarted = (1..)
            .map(|i| key(7001, i))
            .find(|k| colour_of(*k) != colour_of(a));
        assert!(restarted.is_some_and(|k| k.incarnation <= 3));
        assert_ne!(rgb_of(key(7001, 1)), rgb_of(key(7001, 2)));
    }

    #[test]
    fn the_palette_is_readable_on_dark_and_light_backgrounds() {
        let mut seen = BTreeSet::new();
        for &c in &PALETTE {
            assert!((16..232).contains(&c), "{c} is not in the colour cube");
            let i = c - 16;
            let (r, g, b) = (i / 36, i / 6 % 6, i % 6);
            assert!(!(r == g && g == b), "{c} is grey");
            let (on_black, on_white) = contrasts(cube_rgb(c));
            assert!(
                on_black >= 3.0 && on_white >= 3.0,
                "{c}: {on_black:.2}:1 on black, {on_white:.2}:1 on white"
            );
            assert!(seen.insert(c), "{c} twice");
        }
        // And every readable colour of the cube that is not grey is in it.
        let readable = (16u8..232)
            .filter(|&c| {
                let (on_black, on_white) = contrasts(cube_rgb(c));
                let (r, g, b) = cube_rgb(c);
                !(r == g && g == b) && on_black >= 3.0 && on_white >= 3.0
            })
            .count();
        assert_eq!(readable, PALETTE.len());
        assert_eq!(cube_rgb(16), (0, 0, 0));
        assert_eq!(cube_rgb(231), (255, 255, 255));
        assert_eq!(cube_rgb(196), (255, 0, 0));
    }

    #[test]
    fn a_24_bit_colour_is_readable_and_not_grey() {
        let colours: BTreeSet<(u8, u8, u8)> = (0..3000u16)
            .map(|p| rgb_of(key(10_000 + p, u64::from(p % 3))))
            .collect();
        assert!(colours.len() >= 2995, "{} distinct of 3000", colours.len());
        for &(r, g, b) in &colours {
            let (on_black, on_white) = contrasts((r, g, b));
            assert!(
                on_black >= 2.99 && on_white >= 2.99,
                "({r}, {g}, {b}): {on_black:.2}:1 on black, {on_white:.2}:1 on white"
            );
            assert!(r.max(g).max(b) - r.min(g).min(b) >= 64, "({r}, {g}, {b})");
        }
    }

    #[test]
    fn a_short_id_follows_the_identity() {
        assert_eq!(short_id(key(7001, 1)), short_id(key(7001, 1)));
        assert_eq!(short_id(key(7001, 1)).len(), 4);
        let ids: BTreeSet<String> = (0..100).map(|p| short_id(key(7000 + p, 1))).collect();
        assert!(ids.len() >= 99, "{} distinct of 100", ids.len());
        assert_ne!(short_id(key(7001, 1)), short_id(key(7001, 2)));
    }

    #[test]
    fn names_are_painted_only_when_asked() {
        let k = key(7000, 1);
        assert_eq!(paint(Colours::Off, k, "bob"), "bob");
        let cube = paint(Colours::Cube, k, "bob");
        assert_eq!(cube, format!("\x1b[38;5;{}mbob\x1b[0m", colour_of(k)));
        let (r, g, b) = rgb_of(k);
        let rgb = paint(Colours::Rgb, k, "bob");
        assert_eq!(rgb, format!("\x1b[38;2;{r};{g};{b}mbob\x1b[0m"));
    }

    #[test]
    fn no_colour_off_a_terminal_or_with_no_color_and_24_bit_when_colorterm_says() {
        let os = |s| Some(OsStr::new(s));
        assert_eq!(wanted(true, None, None), Colours::Cube);
        assert_eq!(
            wanted(true, os(""), None),
            Colours::Cube,
            "an empty NO_COLOR is unset"
        );
        assert_eq!(wanted(true, os("1"), None), Colours::Off);
        assert_eq!(wanted(false, None, None), Colours::Off);
        assert_eq!(wanted(false, os("1"), None), Colours::Off);
        assert_eq!(wanted(true, None, os("truecolor")), Colours::Rgb);
        assert_eq!(wanted(true, None, os("24bit")), Colours::Rgb);
        assert_eq!(wanted(true, None, os("TrueColor")), Colours::Rgb);
        assert_eq!(wanted(true, None, os("yes")), Colours::Cube);
        assert_eq!(wanted(true, None, os("")), Colours::Cube);
        assert_eq!(wanted(false, None, os("truecolor")), Colours::Off);
        assert_eq!(wanted(true, os("1"), os("truecolor")), Colours::Off);
        assert!(!Colours::Off.on() && Colours::Cube.on() && Colours::Rgb.on());
    }
}
