//! Looking up a loaded object's maps by name, with the layout this crate
//! encodes checked once, and summing per-CPU counters.

use libbpf_rs::{MapCore, MapFlags, MapHandle, Object};

use crate::Error;

/// The map `name` of `object`, after checking that its key and value sizes
/// (and its entry count, when `entries` is given) are what this crate
/// encodes.
pub(crate) fn checked(
    object: &Object,
    name: &'static str,
    key: u32,
    value: u32,
    entries: Option<u32>,
) -> Result<MapHandle, Error> {
    let map = object
        .maps()
        .find(|m| m.name() == name)
        .ok_or(Error::Missing { kind: "map", name })?;
    if map.key_size() != key
        || map.value_size() != value
        || entries.is_some_and(|n| n != map.max_entries())
    {
        return Err(Error::Layout { map: name });
    }
    MapHandle::try_from(&map).map_err(Error::Load)
}

/// Entry `index` of the `__u64` per-CPU array `map` (called `name`), summed
/// over CPUs.
pub(crate) fn percpu_sum(map: &MapHandle, name: &'static str, index: u32) -> Result<u64, Error> {
    let per_cpu = map
        .lookup_percpu(&index.to_ne_bytes(), MapFlags::ANY)
        .map_err(map_error(name, "lookup"))?
        .unwrap_or_default();
    Ok(per_cpu
        .iter()
        .filter_map(|v| v.get(..8)?.try_into().ok())
        .map(u64::from_ne_bytes)
        .sum())
}

/// Wraps a libbpf error of operation `op` on map `map`.
pub(crate) fn map_error(
    map: &'static str,
    op: &'static str,
) -> impl FnOnce(libbpf_rs::Error) -> Error {
    move |source| Error::Map { map, op, source }
}
