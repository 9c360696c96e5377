//! Print the chunks of a file: `cargo run -p quarry-chunk --example chunk_file -- path [--embed]`.

use std::path::Path;

use quarry_chunk::{chunk_source, ApproxTokenCounter, ChunkConfig};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: chunk_file PATH [--embed]");
        std::process::exit(2);
    };
    let embed = args.any(|a| a == "--embed");
    let source = std::fs::read_to_string(&path).expect("readable UTF-8 file");
    for c in chunk_source(
        Path::new(&path),
        &source,
        &ChunkConfig::default(),
        &ApproxTokenCounter,
    ) {
        println!(
            "{} {} {} {}-{}",
            c.language, c.kind, c.symbol, c.start_line, c.end_line
        );
        if embed {
            println!("----\n{}\n====", c.embed_text);
        }
    }
}
