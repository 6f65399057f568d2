//! The main job, end to end: create a bucket, upload small and large files, list, download and
//! verify, copy, hide, delete, clean up.
//!
//! Without credentials it starts a local `b2-emulator` in-process and runs against it:
//!
//! ```sh
//! cargo run -p b2-blocking --example quickstart_blocking
//! ```
//!
//! With `B2_APPLICATION_KEY_ID` and `B2_APPLICATION_KEY` set it runs against Backblaze B2 (or
//! the B2-compatible server `B2_REALM` names), in a fresh bucket it deletes afterwards.

use b2_blocking::b2_proto::model::BucketType;
use b2_blocking::b2_proto::ops::{self, DownloadFileById, DownloadFileByName};
use b2_blocking::b2_proto::{BucketName, FileName};
use b2_blocking::{Client, Error, NewFile, UploadStrategy};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Keep the emulator alive for the whole run when there are no credentials.
    let (client, _emulator) = connect()?;
    let session = client.session()?;
    println!(
        "authorized: account {}, API at {}",
        session.account_id, session.api_url
    );

    let name = BucketName::new(format!("quickstart-{}", suffix()))?;
    let bucket =
        client.create_bucket(ops::CreateBucket::new(name.clone(), BucketType::AllPrivate))?;
    println!(
        "created private bucket {} ({})",
        bucket.bucket_name, bucket.bucket_id
    );

    let outcome = walk(&client, &bucket);

    // Clean up whatever happened above.
    let versions: Vec<_> = client
        .list_file_versions(ops::ListFileVersions::new(bucket.bucket_id.clone()))
        .collect::<Result<_, _>>()?;
    for v in &versions {
        if let Some(id) = &v.file_id {
            client.delete_file_version(&v.file_name, id)?;
        }
    }
    client.delete_bucket(&bucket.bucket_id)?;
    println!("deleted {} file versions and the bucket", versions.len());
    outcome?;
    println!("done");
    Ok(())
}

fn walk(client: &Client, bucket: &b2_blocking::model::Bucket) -> Result<(), Error> {
    let file = |name: &str| -> Result<NewFile, Error> {
        Ok(NewFile::new(bucket.bucket_id.clone(), FileName::new(name)?))
    };

    let small = client.upload_bytes(
        file("hello/world.txt")?.with_content_type("text/plain"),
        &b"Hello, B2!\n"[..],
    )?;
    println!(
        "uploaded {} ({} bytes, SHA1 {})",
        small.file_name, small.content_length, small.content_sha1
    );

    // Large uploads go in parts sent in parallel; the part size follows the server's
    // minimum, so this stays small against the emulator and is 10 MB parts on B2.
    let min_part = client.session()?.absolute_minimum_part_size;
    let big: Vec<u8> = (0..min_part * 3 + 12_345)
        .map(|i| (i % 251) as u8)
        .collect();
    let path = std::env::temp_dir().join(format!("quickstart-{}.bin", suffix()));
    std::fs::write(&path, &big).map_err(|source| Error::Io {
        context: "writing the sample file",
        source,
    })?;
    let strategy = UploadStrategy::default()
        .with_cutoff(2 * min_part)
        .with_part_size(min_part)
        .with_max_in_flight(4);
    let large = client.upload(
        file("big/sample.bin")?,
        b2_blocking::UploadSource::Path(&path),
        &b2_blocking::UploadOptions::new().with_strategy(strategy),
    )?;
    let _ = std::fs::remove_file(&path);
    println!(
        "uploaded {} as a large file ({} bytes in parts)",
        large.file_name, large.content_length
    );

    let names: Vec<_> = client
        .list_file_names(ops::ListFileNames::new(bucket.bucket_id.clone()))
        .collect::<Result<_, _>>()?;
    println!(
        "listed: {:?}",
        names
            .iter()
            .map(|f| f.file_name.as_str())
            .collect::<Vec<_>>()
    );

    let (_, bytes, verification) = client.download_bytes(DownloadFileByName::new(
        bucket.bucket_name.clone(),
        small.file_name.clone(),
    ))?;
    println!(
        "downloaded {:?}: {verification:?}",
        String::from_utf8_lossy(&bytes)
    );
    let (_, bytes, verification) = client.download_bytes(DownloadFileById::new(
        large.file_id.clone().unwrap_or_else(|| unreachable!()),
    ))?;
    assert_eq!(bytes.as_ref(), big.as_slice());
    println!(
        "downloaded the large file: {} bytes, {verification:?}",
        bytes.len()
    );

    let copy = client.copy_file(ops::CopyFile::new(
        small.file_id.clone().unwrap_or_else(|| unreachable!()),
        FileName::new("hello/copy.txt")?,
    ))?;
    println!("copied server-side to {}", copy.file_name);

    client.hide_file(&bucket.bucket_id, &small.file_name)?;
    let visible: Vec<_> = client
        .list_file_names(ops::ListFileNames::new(bucket.bucket_id.clone()))
        .collect::<Result<_, _>>()?;
    println!(
        "hid {}; visible now: {:?}",
        small.file_name,
        visible
            .iter()
            .map(|f| f.file_name.as_str())
            .collect::<Vec<_>>()
    );

    let removed = client.delete_all_versions(&bucket.bucket_id, &copy.file_name)?;
    println!("deleted {removed} version(s) of {}", copy.file_name);
    Ok(())
}

/// A client for Backblaze B2 when credentials are set, else for a local emulator.
fn connect() -> Result<(Client, Option<b2_emulator::Server>), Box<dyn std::error::Error>> {
    if std::env::var_os(b2_blocking::ENV_KEY_ID).is_some()
        && std::env::var_os(b2_blocking::ENV_KEY).is_some()
    {
        println!(
            "using the credentials in {} and {}",
            b2_blocking::ENV_KEY_ID,
            b2_blocking::ENV_KEY
        );
        return Ok((
            Client::from_env()?
                .application("b2-quickstart", env!("CARGO_PKG_VERSION"))
                .build()?,
            None,
        ));
    }
    let emulator = b2_emulator::Server::builder()
        .with_config(
            b2_emulator::Config::new()
                .with_min_part_size(100_000)
                .with_recommended_part_size(400_000),
        )
        .start()?;
    println!(
        "no credentials set: started a local B2 emulator at {}",
        emulator.url()
    );
    let client = Client::builder(emulator.key_id(), emulator.application_key())
        .realm(emulator.url())
        .application("b2-quickstart", env!("CARGO_PKG_VERSION"))
        .build()?;
    Ok((client, Some(emulator)))
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{:x}", nanos & 0xffff_ffff_ffff)
}
