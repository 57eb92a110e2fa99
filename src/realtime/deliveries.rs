//! Per socket, a value for each channel it is on (the outlet's delivery state). Most
//! sockets are on one channel, so the first lives inline, in the outlet's own allocation
//! beside its lock, and any others in a map. A broadcast touches every member's entry
//! once per event: in a map alone that was three cache misses a socket (the lock's line,
//! the map's control bytes, its bucket), the most of the hub's own time in a broadcast to
//! 10,000 sockets.

use std::collections::HashMap;
use std::sync::Arc;

/// Channel name to `T`: the first channel inline, the rest in a map.
pub struct Deliveries<T> {
    first: Option<(Arc<str>, T)>,
    rest: HashMap<Arc<str>, T>,
}

impl<T> Default for Deliveries<T> {
    fn default() -> Self {
        Self {
            first: None,
            rest: HashMap::new(),
        }
    }
}

impl<T> Deliveries<T> {
    pub fn get_mut(&mut self, channel: &str) -> Option<&mut T> {
        if let Some((name, value)) = &mut self.first
            && **name == *channel
        {
            return Some(value);
        }
        if self.rest.is_empty() {
            return None;
        }
        self.rest.get_mut(channel)
    }

    /// The value for `channel`, made with `make` if it has none.
    pub fn get_or_insert_with(&mut self, channel: &Arc<str>, make: impl FnOnce() -> T) -> &mut T {
        let inline = match &self.first {
            Some((name, _)) => **name == **channel,
            None => !self.rest.contains_key(&**channel),
        };
        if inline {
            &mut self
                .first
                .get_or_insert_with(|| (channel.clone(), make()))
                .1
        } else {
            self.rest.entry(channel.clone()).or_insert_with(make)
        }
    }

    pub fn contains_key(&self, channel: &str) -> bool {
        matches!(&self.first, Some((name, _)) if **name == *channel)
            || self.rest.contains_key(channel)
    }

    pub fn remove(&mut self, channel: &str) -> Option<T> {
        if matches!(&self.first, Some((name, _)) if **name == *channel) {
            return self.first.take().map(|(_, value)| value);
        }
        self.rest.remove(channel)
    }

    pub fn len(&self) -> usize {
        usize::from(self.first.is_some()) + self.rest.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&Arc<str>, &T)> {
        self.first
            .iter()
            .map(|(name, value)| (name, value))
            .chain(self.rest.iter())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::Deliveries;

    fn names(map: &Deliveries<u64>) -> Vec<(String, u64)> {
        let mut all: Vec<_> = map.iter().map(|(k, v)| (k.to_string(), *v)).collect();
        all.sort();
        all
    }

    #[test]
    fn each_channel_has_one_entry_wherever_it_lives() {
        let (a, b, c): (Arc<str>, Arc<str>, Arc<str>) = ("a".into(), "b".into(), "c".into());
        let mut map = Deliveries::default();
        *map.get_or_insert_with(&a, || 1) += 10;
        *map.get_or_insert_with(&b, || 2) += 20;
        *map.get_or_insert_with(&a, || 99) += 100;
        assert_eq!(names(&map), [("a".into(), 111), ("b".into(), 22)]);
        assert_eq!(map.len(), 2);

        // The inline one goes; the other stays reachable, and a new one takes its place
        // without a second entry for a channel already in the map.
        assert_eq!(map.remove("a"), Some(111));
        assert_eq!(map.get_mut("a"), None);
        assert!(!map.contains_key("a"));
        *map.get_or_insert_with(&b, || 0) += 1;
        map.get_or_insert_with(&c, || 3);
        assert_eq!(names(&map), [("b".into(), 23), ("c".into(), 3)]);
        assert_eq!(map.get_mut("c"), Some(&mut 3));
        assert!(map.contains_key("b") && map.contains_key("c"));
        assert_eq!(map.remove("b"), Some(23));
        assert_eq!(map.remove("b"), None);
        assert_eq!(names(&map), [("c".into(), 3)]);
        assert_eq!(map.len(), 1);
    }
}
