//! Who is who: a colour per member, from its identity.

use gossip_chat::NodeKey;
use std::ffi::OsStr;

/// The colours a member's name can take: the entries of the xterm
/// 256-colour cube (`16 + 36r + 6g + b`) whose channels are all 1 to 4
/// (no black, no white), not grey, with one channel at least 3 (not too dark
/// on a dark background) and one at most 2 (not too pale on a light one).
/// 48 colours: two members collide about once in 48.
pub const PALETTE: [u8; 48] = palette();

const fn palette() -> [u8; 48] {
    let mut out = [0u8; 48];
    let mut n = 0;
    let mut i = 0;
    while i < 64 {
        let (r, g, b) = (1 + i / 16, 1 + i / 4 % 4, 1 + i % 4);
        let max = if r > g { r } else { g };
        let max = if max > b { max } else { b };
        let min = if r < g { r } else { g };
        let min = if min < b { min } else { b };
        if !(r == g && g == b) && max >= 3 && min <= 2 {
            out[n] = (16 + 36 * r + 6 * g + b) as u8;
            n += 1;
        }
        i += 1;
    }
    assert!(n == 48);
    out
}

/// Whether to colour names: only on a terminal, and not when `NO_COLOR` is
/// set to anything but the empty string (<https://no-color.org>).
pub fn wanted(stdout_is_terminal: bool, no_color: Option<&OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(OsStr::is_empty)
}

/// [`wanted`] for this process's stdout and environment.
pub fn wanted_here() -> bool {
    use std::io::IsTerminal;
    wanted(
        std::io::stdout().is_terminal(),
        std::env::var_os("NO_COLOR").as_deref(),
    )
}

/// The colour of a member, an xterm 256-colour index from [`PALETTE`]: a
/// hash of its identity (address and life), so that two members with the
/// same name show in different colours (47 times in 48) and a member keeps
/// its colour for its whole life, on every node.
pub fn colour_of(node: NodeKey) -> u8 {
    PALETTE[((identity_hash(node) >> 32) % PALETTE.len() as u64) as usize]
}

/// A member's identity in short: four hex digits of a hash of its address
/// and life, shown beside its name so that two `bob`s can be told apart in
/// words too (and without colour). The same on every node.
pub fn short_id(node: NodeKey) -> String {
    format!("{:04x}", identity_hash(node) & 0xffff)
}

/// A well-mixed hash of a member's identity (address and life).
fn identity_hash(node: NodeKey) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    eat(node.addr.to_string().as_bytes());
    eat(&node.incarnation.to_le_bytes());
    // A finalising mix: FNV's low bits alone spread poorly.
    let h = (h ^ (h >> 33)).wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// `name` in the member's colour when `colour` is on.
pub fn paint(colour: bool, node: NodeKey, name: &str) -> String {
    if colour {
        format!("\x1b[38;5;{}m{name}\x1b[0m", colour_of(node))
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn key(port: u16, incarnation: u64) -> NodeKey {
        NodeKey {
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
            incarnation,
        }
    }

    #[test]
    fn colours_follow_the_identity_not_the_name() {
        // The same identity always gets the same colour...
        assert_eq!(colour_of(key(7000, 1)), colour_of(key(7000, 1)));
        // ...and identities spread over the palette.
        let seen: std::collections::BTreeSet<u8> =
            (0..24).map(|p| colour_of(key(7000 + p, 1))).collect();
        assert!(seen.len() >= 12, "colours used: {seen:?}");
        let lives: std::collections::BTreeSet<u8> =
            (0..24).map(|i| colour_of(key(7000, i))).collect();
        assert!(lives.len() >= 12, "colours used: {lives:?}");
        // Every colour comes from the palette, and the whole palette is used.
        let all: std::collections::BTreeSet<u8> =
            (0..2000).map(|p| colour_of(key(9000 + p, 1))).collect();
        assert_eq!(all, PALETTE.iter().copied().collect());
    }

    #[test]
    fn two_members_named_bob_look_different() {
        // Two bobs on neighbouring ports, and a bob restarted (a new life
        // at the same address): the names are the same, the colours not.
        let (a, b) = (key(7001, 1), key(7002, 1));
        assert_ne!(colour_of(a), colour_of(b));
        assert_ne!(paint(true, a, "bob"), paint(true, b, "bob"));
        let restarted = (1..)
            .map(|i| key(7001, i))
            .find(|k| colour_of(*k) != colour_of(a));
        assert!(restarted.is_some_and(|k| k.incarnation <= 3));
        // Over many pairs, a collision is about one in 48.
        let same = (0..4800u16)
            .filter(|p| colour_of(key(8000 + 2 * p, 1)) == colour_of(key(8001 + 2 * p, 1)))
            .count();
        assert!((50..150).contains(&same), "{same} of 4800 pairs alike");
    }

    #[test]
    fn the_palette_is_readable_on_dark_and_light_backgrounds() {
        let mut seen = std::collections::BTreeSet::new();
        for &c in &PALETTE {
            assert!((16..232).contains(&c), "{c} is not in the colour cube");
            let i = c - 16;
            let (r, g, b) = (i / 36, i / 6 % 6, i % 6);
            let (lo, hi) = (r.min(g).min(b), r.max(g).max(b));
            assert!(
                (1..=2).contains(&lo) && (3..=4).contains(&hi),
                "{c}: {r} {g} {b}"
            );
            assert!(!(r == g && g == b), "{c} is grey");
            assert!(seen.insert(c), "{c} twice");
        }
    }

    #[test]
    fn a_short_id_follows_the_identity() {
        assert_eq!(short_id(key(7001, 1)), short_id(key(7001, 1)));
        assert_eq!(short_id(key(7001, 1)).len(), 4);
        let ids: std::collections::BTreeSet<String> =
            (0..100).map(|p| short_id(key(7000 + p, 1))).collect();
        assert!(ids.len() >= 99, "{} distinct of 100", ids.len());
        assert_ne!(short_id(key(7001, 1)), short_id(key(7001, 2)));
    }

    #[test]
    fn names_are_painted_only_when_asked() {
        let k = key(7000, 1);
        assert_eq!(paint(false, k, "bob"), "bob");
        let painted = paint(true, k, "bob");
        assert!(
            painted.starts_with("\x1b[38;5;")
                && painted.contains("bob")
                && painted.ends_with("\x1b[0m")
        );
    }

    #[test]
    fn no_colour_off_a_terminal_or_with_no_color() {
        assert!(wanted(true, None));
        assert!(
            wanted(true, Some(OsStr::new(""))),
            "an empty NO_COLOR is unset"
        );
        assert!(!wanted(true, Some(OsStr::new("1"))));
        assert!(!wanted(false, None));
        assert!(!wanted(false, Some(OsStr::new("1"))));
    }
}
