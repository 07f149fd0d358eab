//! Who is who: a colour per member, from its identity.

use gossip_chat::NodeKey;
use std::ffi::OsStr;

/// ANSI colours a member's name can take: distinct on dark and light
/// backgrounds alike (red, green, yellow, blue, magenta, cyan).
const COLOURS: [u8; 6] = [31, 32, 33, 34, 35, 36];

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

/// The ANSI colour of a member (31 to 36): a hash of its identity (address
/// and life) into a fixed palette, so that two members with the same name
/// show in different colours (five times in six) and a member keeps its
/// colour for its whole life, on every node.
pub fn colour_of(node: NodeKey) -> u8 {
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
    let h = h ^ (h >> 33);
    COLOURS[((h >> 32) % COLOURS.len() as u64) as usize]
}

/// `name` in the member's colour when `colour` is on.
pub fn paint(colour: bool, node: NodeKey, name: &str) -> String {
    if colour {
        format!("\x1b[{}m{name}\x1b[0m", colour_of(node))
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
        assert!(seen.len() >= 4, "colours used: {seen:?}");
        let lives: std::collections::BTreeSet<u8> =
            (0..24).map(|i| colour_of(key(7000, i))).collect();
        assert!(lives.len() >= 4, "colours used: {lives:?}");
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
        assert!(restarted.is_some_and(|k| k.incarnation <= 6));
        // Over many pairs, a collision is about one in six.
        let same = (0..600u16)
            .filter(|p| colour_of(key(8000 + 2 * p, 1)) == colour_of(key(8001 + 2 * p, 1)))
            .count();
        assert!((50..150).contains(&same), "{same} of 600 pairs alike");
    }

    #[test]
    fn names_are_painted_only_when_asked() {
        let k = key(7000, 1);
        assert_eq!(paint(false, k, "bob"), "bob");
        let painted = paint(true, k, "bob");
        assert!(
            painted.starts_with("\x1b[3")
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
