//! Cutting a set's wheels into install batches: wheels installed together add up to at most
//! [`BatchLimits::bytes`] unpacked or [`BatchLimits::members`] members (one wheel larger than
//! that makes a batch of its own). What a batch holds in memory (zip directories, plans, one
//! outcome per member) grows with its members, so the limits bound the memory of an install
//! whatever the payload's size.

use std::ops::Range;

/// The most a batch may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub bytes: u64,
    pub members: u64,
}

impl Default for BatchLimits {
    fn default() -> Self {
        BatchLimits {
            bytes: 64 << 20,
            members: 4096,
        }
    }
}

/// The size of one wheel, as the manifest gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WheelSize {
    pub unpacked_bytes: u64,
    pub members: u64,
}

/// Cuts `wheels` (in plan order) into consecutive batches that cover every wheel once.
pub fn cut_batches(wheels: &[WheelSize], limits: BatchLimits) -> Vec<Range<usize>> {
    let mut batches = Vec::new();
    let mut start = 0;
    let (mut bytes, mut members) = (0u64, 0u64);
    for (index, wheel) in wheels.iter().enumerate() {
        bytes = bytes.saturating_add(wheel.unpacked_bytes);
        members = members.saturating_add(wheel.members);
        let next_members = wheels.get(index + 1).map_or(0, |next| next.members);
        let last = index + 1 == wheels.len();
        if last || bytes >= limits.bytes || members.saturating_add(next_members) > limits.members {
            batches.push(start..index + 1);
            start = index + 1;
            bytes = 0;
            members = 0;
        }
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(list: &[(u64, u64)]) -> Vec<WheelSize> {
        list.iter()
            .map(|&(unpacked_bytes, members)| WheelSize {
                unpacked_bytes,
                members,
            })
            .collect()
    }

    const LIMITS: BatchLimits = BatchLimits {
        bytes: 100,
        members: 10,
    };

    #[test]
    fn batches_cover_every_wheel_once_in_order() {
        // Each row: the wheels' (bytes, members), and the batches as (start, end).
        type Row = (Vec<(u64, u64)>, Vec<(usize, usize)>);
        let table: Vec<Row> = vec![
            (vec![], vec![]),
            (vec![(1, 1)], vec![(0, 1)]),
            (vec![(10, 1), (10, 1), (10, 1)], vec![(0, 3)]),
            // Bytes: the batch closes once it reaches the limit.
            (vec![(60, 1), (50, 1), (10, 1)], vec![(0, 2), (2, 3)]),
            // One wheel past the limit is a batch of its own.
            (vec![(500, 1), (1, 1)], vec![(0, 1), (1, 2)]),
            // Members: the batch closes before the next wheel would pass the limit.
            (vec![(1, 4), (1, 4), (1, 4)], vec![(0, 2), (2, 3)]),
            (vec![(1, 30), (1, 1)], vec![(0, 1), (1, 2)]),
            (vec![(1, 5), (1, 5), (1, 1)], vec![(0, 2), (2, 3)]),
        ];
        for (wheels, expected) in table {
            let batches: Vec<(usize, usize)> = cut_batches(&sizes(&wheels), LIMITS)
                .into_iter()
                .map(|batch| (batch.start, batch.end))
                .collect();
            assert_eq!(batches, expected, "{wheels:?}");
        }
    }

    #[test]
    fn batches_stay_within_the_limits_unless_one_wheel_is_bigger() {
        let wheels: Vec<WheelSize> = (0..200u64)
            .map(|i| WheelSize {
                unpacked_bytes: (i * 37) % 90,
                members: (i * 13) % 12,
            })
            .collect();
        let batches = cut_batches(&wheels, LIMITS);
        let mut next = 0;
        for batch in &batches {
            assert_eq!(batch.start, next);
            next = batch.end;
            let members: u64 = wheels[batch.clone()].iter().map(|w| w.members).sum();
            assert!(members <= LIMITS.members || batch.len() == 1, "{batch:?}");
        }
        assert_eq!(next, wheels.len());
    }
}
