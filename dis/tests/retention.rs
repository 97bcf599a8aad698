//! Retention through the service: records older than a stream's `data_duration` go with
//! their segments; a cursor made before points at expired records (DIS.4226), TRIM_HORIZON
//! moves on, and a partition removed by a scale-down becomes EXPIRED once its records have.

use fgs_dis::api::code_of;
use fgs_dis::log::LogConfig;
use fgs_dis::policies::Caller;
use fgs_dis::records::{CursorQuery, PutEntry, PutRecords};
use fgs_dis::streams::NewStream;
use fgs_dis::{Dis, DisConfig, DisError};

const HOUR_MS: i64 = 3_600_000;

fn caller() -> Caller {
    Caller {
        project: "p1".into(),
        user: None,
    }
}

fn put(dis: &Dis, n: usize) {
    let records = (0..n)
        .map(|i| PutEntry {
            data: Some(base64_of(&format!("record-{i:05}"))),
            explicit_hash_key: None,
            partition_id: Some("0".into()),
            partition_key: None,
        })
        .collect();
    let placed = dis
        .send_records(
            &caller(),
            PutRecords {
                stream_name: Some("s1".into()),
                stream_id: None,
                records: Some(records),
            },
        )
        .unwrap();
    assert!(placed.iter().all(Result::is_ok));
}

fn base64_of(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn trim_horizon(dis: &Dis, partition: &str) -> Result<String, DisError> {
    dis.cursor(
        &caller(),
        CursorQuery {
            stream_name: Some("s1".into()),
            partition_id: Some(partition.into()),
            cursor_type: Some("TRIM_HORIZON".into()),
            ..Default::default()
        },
    )
}

#[test]
fn expired_records_go_and_a_cursor_to_them_answers_4226() {
    let dir = tempfile::tempdir().unwrap();
    let config = DisConfig {
        log: LogConfig {
            segment_bytes: 4096,
            index_interval: 512,
        },
        ..Default::default()
    };
    let dis = Dis::open(dir.path(), config, &prometheus::Registry::new()).unwrap();
    let new = serde_json::from_value::<NewStream>(serde_json::json!({
        "stream_name": "s1", "partition_count": 2, "data_duration": 24
    }))
    .unwrap();
    dis.create_stream("p1", new).unwrap();
    put(&dis, 500);
    let early = trim_horizon(&dis, "0").unwrap();
    dis.update_partition_count("p1", "s1", Some(1)).unwrap();

    // A day and a bit later the first segments have expired; newer records stay.
    let later = chrono::Utc::now().timestamp_millis() + 25 * HOUR_MS;
    let removed = dis.enforce_retention(later).unwrap();
    assert!(removed > 0);
    put(&dis, 1);
    let err = dis
        .consume(&caller(), Some(&early), None, None)
        .unwrap_err();
    assert!(
        matches!(err, DisError::Expired { requested: 0, .. }),
        "{err:?}"
    );
    assert_eq!(code_of(&err).1, "DIS.4226");
    // TRIM_HORIZON now starts at the oldest record kept: the segment taking appends stays
    // whole (retention goes by segments), so the newest old records are there, then the new.
    let fresh = trim_horizon(&dis, "0").unwrap();
    let got = dis.consume(&caller(), Some(&fresh), None, None).unwrap();
    let first = got.records[0].sequence;
    assert!(first > 0 && first < 500, "{first}");
    let sequences: Vec<u64> = got.records.iter().map(|r| r.sequence).collect();
    assert_eq!(sequences, (first..=500).collect::<Vec<_>>());
    assert_eq!(&got.records.last().unwrap().data[..], b"record-00000");
    // The partition removed by the scale-down has expired with its records.
    let err = trim_horizon(&dis, "1").unwrap_err();
    assert_eq!(code_of(&err).1, "DIS.4302");

    // Reopened, the service keeps what retention decided.
    drop(dis);
    let dis = Dis::open(
        dir.path(),
        DisConfig::default(),
        &prometheus::Registry::new(),
    )
    .unwrap();
    assert!(trim_horizon(&dis, "1").is_err());
    let fresh = trim_horizon(&dis, "0").unwrap();
    let again = dis.consume(&caller(), Some(&fresh), None, None).unwrap();
    assert_eq!(again.records.len(), sequences.len());
}
