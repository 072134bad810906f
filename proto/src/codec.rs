//! rkyv encoding shared by everything FlowLens stores or logs (event batches in the Raft log,
//! projection records in sled): encode to bytes, and decode any byte string safely (validated,
//! copied to aligned memory first, so sled's unaligned buffers are fine).

/// Encodes a value with rkyv.
pub fn to_rkyv<T>(value: &T) -> Vec<u8>
where
    T: for<'a> rkyv::Serialize<
        rkyv::api::high::HighSerializer<
            rkyv::util::AlignedVec,
            rkyv::ser::allocator::ArenaHandle<'a>,
            rkyv::rancor::Error,
        >,
    >,
{
    rkyv::to_bytes::<rkyv::rancor::Error>(value)
        .map(|bytes| bytes.into_vec())
        .unwrap_or_default()
}

/// Decodes bytes made by [`to_rkyv`], checking them first; the error says what was wrong.
pub fn from_rkyv<T>(bytes: &[u8]) -> Result<T, String>
where
    T: rkyv::Archive,
    T::Archived: for<'a> rkyv::bytecheck::CheckBytes<rkyv::api::high::HighValidator<'a, rkyv::rancor::Error>>
        + rkyv::Deserialize<T, rkyv::api::high::HighDeserializer<rkyv::rancor::Error>>,
{
    let mut aligned = rkyv::util::AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<T, rkyv::rancor::Error>(&aligned).map_err(|e| e.to_string())
}
