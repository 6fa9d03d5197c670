//! A small writer of MaxMind DB files, for tests of the layouts `geoip.database` reads
//! (the GeoIP2 layout of MaxMind's and DB-IP's City files): IPv4 networks, each with
//! one record, in the format of <https://maxmind.github.io/MaxMind-DB/>.

/// A value of the MaxMind DB data section.
pub enum V {
    Str(&'static str),
    Double(f64),
    U16(u16),
    U32(u32),
    U64(u64),
    Map(Vec<(&'static str, V)>),
    Array(Vec<V>),
}

fn control(out: &mut Vec<u8>, kind: u8, size: usize) {
    let (first, extra): (u8, Vec<u8>) = match size {
        0..=28 => (size as u8, vec![]),
        29..=284 => (29, vec![(size - 29) as u8]),
        _ => {
            let s = size - 285;
            (30, vec![(s >> 8) as u8, s as u8])
        }
    };
    if kind <= 7 {
        out.push((kind << 5) | first);
    } else {
        out.push(first);
        out.push(kind - 7);
    }
    out.extend(extra);
}

fn encode(out: &mut Vec<u8>, v: &V) {
    match v {
        V::Str(s) => {
            control(out, 2, s.len());
            out.extend_from_slice(s.as_bytes());
        }
        V::Double(d) => {
            control(out, 3, 8);
            out.extend_from_slice(&d.to_be_bytes());
        }
        V::U16(n) => uint(out, 5, u64::from(*n)),
        V::U32(n) => uint(out, 6, u64::from(*n)),
        V::U64(n) => uint(out, 9, *n),
        V::Map(entries) => {
            control(out, 7, entries.len());
            for (k, v) in entries {
                encode(out, &V::Str(k));
                encode(out, v);
            }
        }
        V::Array(items) => {
            control(out, 11, items.len());
            for v in items {
                encode(out, v);
            }
        }
    }
}

/// Unsigned integers are written in as few bytes as they need.
fn uint(out: &mut Vec<u8>, kind: u8, n: u64) {
    let bytes = n.to_be_bytes();
    let skip = bytes.iter().take_while(|b| **b == 0).count();
    control(out, kind, 8 - skip);
    out.extend_from_slice(&bytes[skip..]);
}

/// An IPv4 database (`ip_version` 4, 24-bit records) of `database_type`, holding each
/// network (address, prefix length) with its record.
pub fn ipv4_database(database_type: &'static str, networks: &[([u8; 4], u8, V)]) -> Vec<u8> {
    let mut data = Vec::new();
    let mut offsets = Vec::new();
    for (_, _, record) in networks {
        offsets.push(data.len());
        encode(&mut data, record);
    }
    // The tree: node 0 is the root; `EMPTY` (== node count) means no data.
    let mut nodes: Vec<[Option<u32>; 2]> = vec![[None, None]];
    let mut leaves: Vec<(usize, usize, usize)> = Vec::new(); // (node, side, network)
    for (i, (addr, prefix, _)) in networks.iter().enumerate() {
        let bits = u32::from_be_bytes(*addr);
        let mut node = 0usize;
        for depth in 0..*prefix {
            let side = ((bits >> (31 - depth)) & 1) as usize;
            if depth + 1 == *prefix {
                leaves.push((node, side, i));
            } else {
                node = match nodes[node][side] {
                    Some(next) => next as usize,
                    None => {
                        nodes.push([None, None]);
                        let next = nodes.len() - 1;
                        nodes[node][side] = Some(next as u32);
                        next
                    }
                };
            }
        }
    }
    let count = nodes.len() as u32;
    let mut records: Vec<[u32; 2]> = nodes
        .iter()
        .map(|n| [n[0].unwrap_or(count), n[1].unwrap_or(count)])
        .collect();
    for (node, side, net) in leaves {
        records[node][side] = count + 16 + offsets[net] as u32;
    }
    let mut out = Vec::new();
    for [l, r] in records {
        out.extend_from_slice(&l.to_be_bytes()[1..]);
        out.extend_from_slice(&r.to_be_bytes()[1..]);
    }
    out.extend_from_slice(&[0u8; 16]);
    out.extend_from_slice(&data);
    out.extend_from_slice(b"\xAB\xCD\xEFMaxMind.com");
    let meta = V::Map(vec![
        ("binary_format_major_version", V::U16(2)),
        ("binary_format_minor_version", V::U16(0)),
        ("build_epoch", V::U64(1_780_617_600)),
        ("database_type", V::Str(database_type)),
        ("description", V::Map(vec![("en", V::Str("test database"))])),
        ("ip_version", V::U16(4)),
        ("languages", V::Array(vec![V::Str("en")])),
        ("node_count", V::U32(count)),
        ("record_size", V::U16(24)),
    ]);
    encode(&mut out, &meta);
    out
}

/// A GeoIP2-layout City record.
pub fn geoip2_city(
    code: &'static str,
    country: &'static str,
    city: &'static str,
    lat: f64,
    lon: f64,
) -> V {
    V::Map(vec![
        (
            "city",
            V::Map(vec![("names", V::Map(vec![("en", V::Str(city))]))]),
        ),
        (
            "country",
            V::Map(vec![
                ("iso_code", V::Str(code)),
                ("names", V::Map(vec![("en", V::Str(country))])),
            ]),
        ),
        (
            "location",
            V::Map(vec![
                ("accuracy_radius", V::U16(20)),
                ("latitude", V::Double(lat)),
                ("longitude", V::Double(lon)),
            ]),
        ),
    ])
}
