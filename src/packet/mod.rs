//! Wire decoding shared by capture files and live probes: bytes → [`Packet`].
