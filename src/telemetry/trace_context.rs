//! W3C trace context (`traceparent`): parsed from apps' HTTP requests, carried in a Kafka
//! header from the collector to the workers, so one event can be followed across services.

use rand::Rng;

/// The Kafka header (and HTTP header) name.
pub const TRACEPARENT: &str = "traceparent";

/// The `sampled` bit of a `traceparent`'s flags.
const SAMPLED: u8 = 0x01;

/// A parsed `traceparent`: version 00, trace id, parent span id, flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceParent {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// 16 lowercase hex digits, not all zero.
    pub span_id: String,
    /// Sampled flag and friends.
    pub flags: u8,
}

/// `len` lowercase hex digits (the only digits a traceparent has).
fn lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An id: `len` lowercase hex digits, not all zero.
fn hex(s: &str, len: usize) -> bool {
    lower_hex(s, len) && s.bytes().any(|b| b != b'0')
}

impl TraceParent {
    /// Parses a header value; `None` if it is not a valid version-00 traceparent.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace_id, span_id, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some()
            || version != "00"
            || !hex(trace_id, 32)
            || !hex(span_id, 16)
            || !lower_hex(flags, 2)
        {
            return None;
        }
        Some(TraceParent {
            trace_id: trace_id.to_owned(),
            span_id: span_id.to_owned(),
            flags: u8::from_str_radix(flags, 16).ok()?,
        })
    }

    /// [`TraceParent::parse`], for a trace its caller sampled (flag `01` set) only: a
    /// worker reads one per record and records a span for the sampled ones, so an unsampled
    /// value is refused from its flags, before anything is copied.
    pub fn parse_sampled(value: &str) -> Option<TraceParent> {
        let flags = value.trim().rsplit('-').next()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        if flags & SAMPLED == 0 {
            return None;
        }
        TraceParent::parse(value)
    }

    /// A new trace, not sampled: the collector starts one for a request that carries no
    /// `traceparent`. Sampling is the app's tracer's decision; a span per event of every
    /// untraced request would cost a worker more than folding the event.
    pub fn random() -> TraceParent {
        let mut rng = rand::rng();
        TraceParent {
            trace_id: format!("{:032x}", rng.random::<u128>() | 1),
            span_id: format!("{:016x}", rng.random::<u64>() | 1),
            flags: 0,
        }
    }

    /// The same trace with a new span of this process as the parent.
    pub fn child(&self) -> TraceParent {
        TraceParent {
            span_id: format!("{:016x}", rand::rng().random::<u64>() | 1),
            ..self.clone()
        }
    }

    /// The header value.
    pub fn header(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, self.flags)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_rejects_like_the_w3c_spec() {
        let valid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse(valid).unwrap();
        assert_eq!(parsed.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(parsed.header(), valid);
        assert_eq!(parsed.child().trace_id, parsed.trace_id);
        assert_ne!(parsed.child().span_id, parsed.span_id);
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
        assert!(TraceParent::parse(&TraceParent::random().header()).is_some());
    }

    #[test]
    fn only_a_sampled_trace_is_taken_for_a_record_span() {
        let sampled = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let parsed = TraceParent::parse_sampled(sampled).unwrap();
        assert_eq!(Some(&parsed), TraceParent::parse(sampled).as_ref());
        assert_eq!(parsed.flags, SAMPLED);
        // Other flags beside the sampled bit.
        assert!(TraceParent::parse_sampled(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03"
        )
        .is_some());
        for refused in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-02",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-+1",
            "",
        ] {
            assert_eq!(TraceParent::parse_sampled(refused), None, "{refused}");
        }
        let started = TraceParent::random();
        assert_eq!(started.flags, 0, "the collector samples nothing itself");
        assert_eq!(TraceParent::parse_sampled(&started.header()), None);
        assert_eq!(started.child().flags, 0);
    }
}
