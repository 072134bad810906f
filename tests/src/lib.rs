//! Helpers shared by the end-to-end tests: reading pcap captures and their tshark truth.
