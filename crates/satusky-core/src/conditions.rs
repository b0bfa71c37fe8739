//! Status conditions whose `last_transition_time` moves only on a real change.

use chrono::{DateTime, Utc};
use satusky_types::apps::Condition;

/// Merges freshly computed conditions with the previous ones: a condition
/// whose status did not change keeps its old transition time.
pub fn merge(old: &[Condition], new: Vec<Condition>, now: DateTime<Utc>) -> Vec<Condition> {
    new.into_iter()
        .map(|mut c| {
            match old.iter().find(|o| o.type_ == c.type_) {
                Some(o) if o.status == c.status => c.last_transition_time = o.last_transition_time,
                _ => c.last_transition_time = now,
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(t: &str, s: &str, at: DateTime<Utc>) -> Condition {
        Condition {
            type_: t.into(),
            status: s.into(),
            reason: None,
            message: None,
            last_transition_time: at,
        }
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let t0 = DateTime::<Utc>::from_timestamp(1_000, 0).unwrap();
        let t1 = DateTime::<Utc>::from_timestamp(2_000, 0).unwrap();
        let old = vec![cond("Ready", "False", t0), cond("Progressing", "True", t0)];
        let merged = merge(
            &old,
            vec![cond("Ready", "True", t1), cond("Progressing", "True", t1)],
            t1,
        );
        assert_eq!(merged[0].last_transition_time, t1);
        assert_eq!(merged[1].last_transition_time, t0);
        let fresh = merge(&[], vec![cond("Degraded", "True", t0)], t1);
        assert_eq!(fresh[0].last_transition_time, t1);
    }
}
