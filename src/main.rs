use std::io::BufRead;
fn main() {
    let program = match amplitude_posthog::vrl_engine::VrlProgram::mapping() {
        Ok(p) => p,
        Err(e) => { eprintln!("{e}"); std::process::exit(1) }
    };
    for w in program.warnings() { eprintln!("{w}"); }
    let mut m = program.mapper();
    for line in std::io::stdin().lock().split(b'\n') {
        let line = line.unwrap();
        println!("{}", m.map_line(&line).to_result_json());
    }
}
