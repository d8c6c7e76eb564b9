//! Generates the Titus protobuf types, the `JobManagementService` server and client, and the file
//! descriptor set (served by gRPC reflection and used for the JSON mapping and field projection).

fn main() -> std::io::Result<()> {
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap_or_default());
    tonic_prost_build::configure()
        .btree_map(".")
        .file_descriptor_set_path(out_dir.join("titus_descriptor.bin"))
        .compile_protos(&["proto/netflix/titus/titus_job_api.proto"], &["proto"])?;
    println!("cargo:rerun-if-changed=proto");
    Ok(())
}
