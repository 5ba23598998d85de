//! The register file of the attention kernel, written out for one head dimension and one
//! number of query rows per invocation (`R`, 1 to 4): `struct Block` holds `R` rows of
//! `D4` named vec4s (a query block, or an accumulator), and the functions over it
//! (`block_load`, `block_dot`, `block_axpy`, `block_scale`, `block_store`,
//! `block_store_partial`, `rows_bias`). Per-row scalars are `RowsF` (`f32` for one row, a
//! vector of `R` otherwise), so `flash.wgsl` is written once for every `R`.
//!
//! Named fields, not arrays: no shader compiler then needs to unroll a loop to keep the
//! rows in registers, and each key or value vec4 read from workgroup memory serves all `R`
//! rows (on lavapipe and llvmpipe every such read is a per-lane gather: reading it once for
//! four rows is what makes the kernel fast there). The operation order is fixed here, the
//! same for the fused and the materialized bias.

use std::fmt::Write as _;

const COMPONENTS: [&str; 4] = ["x", "y", "z", "w"];

/// The WGSL of `Block`, the per-row aliases and the functions for `rows` rows of `d4`
/// vec4s, to compose with `flash.wgsl` (it names `q_in`, `k_tile`, `v_tile`, `out`,
/// `partial` and `bias`).
pub(crate) fn rows_wgsl(rows: u32, d4: u32) -> String {
    assert!((1..=4).contains(&rows), "1 to 4 rows per invocation");
    let r = rows as usize;
    // Component `n` of a per-row value `name`.
    let at = |name: &str, n: usize| {
        if r == 1 {
            name.to_owned()
        } else {
            format!("{name}.{}", COMPONENTS[n])
        }
    };
    let vector = |scalar: &str| {
        if r == 1 {
            scalar.to_owned()
        } else {
            format!("vec{r}<{scalar}>")
        }
    };
    let fields = |f: &dyn Fn(usize, u32) -> String, sep: &str| -> String {
        (0..r)
            .flat_map(|n| (0..d4).map(move |d| (n, d)))
            .map(|(n, d)| f(n, d))
            .collect::<Vec<_>>()
            .join(sep)
    };
    let mut w = String::new();
    // Writing to a String cannot fail.
    let _ = writeln!(
        w,
        "// Written by src/gpu/attention/rows.rs: R = {rows}, D4 = {d4}."
    );
    let _ = writeln!(w, "const ROWS_PER_INVOCATION: u32 = {rows}u;");
    let _ = writeln!(w, "alias RowsF = {};", vector("f32"));
    let _ = writeln!(w, "alias RowsI = {};", vector("i32"));
    let _ = writeln!(w, "alias RowsU = {};", vector("u32"));
    let _ = writeln!(w, "alias RowsB = {};", vector("bool"));
    let offsets: Vec<String> = (0..r).map(|n| format!("{n}u * LANES")).collect();
    let _ = writeln!(w, "// Row n of an invocation is `lane + n * LANES` of its tile.\nconst LANE_OFFSETS: RowsU = RowsU({});", offsets.join(", "));
    let _ = writeln!(
        w,
        "struct Block {{\n{}\n}}",
        fields(&|n, d| format!("    r{n}v{d}: vec4<f32>,"), "\n")
    );
    let _ = writeln!(
        w,
        "fn block_zero() -> Block {{\n    return Block({});\n}}",
        fields(&|_, _| "vec4<f32>(0.0)".into(), ", ")
    );
    let _ = writeln!(
        w,
        "// The q rows starting at `bases` (in vec4s).\nfn block_load(bases: RowsU) -> Block {{\n    return Block({});\n}}",
        fields(&|n, d| format!("input4(q_in[{} + {d}u])", at("bases", n)), ", ")
    );
    // q . k per row: each k vec4 read once; per row one vec4 of partial sums, added in
    // field order, then across. From the tile (`flash`) or from k itself (`decode`).
    // Keys of k and v are counted in the tensors; their reads, in the run's window.
    let tile_base = "key * D4";
    let window_base = "key * D4 - params.kv_window";
    for (name, what, base, read) in [
        (
            "block_dot",
            "key `key` of the tile",
            tile_base,
            "k_tile[base + {d}u]",
        ),
        (
            "block_dot_k",
            "the key at `key` of k",
            window_base,
            "input4(k_in[base + {d}u])",
        ),
    ] {
        let _ = writeln!(w, "// q . k of every row for {what}.\nfn {name}(q: Block, key: u32) -> RowsF {{\n    let base = {base};");
        for d in 0..d4 {
            let _ = writeln!(w, "    let k{d} = {};", read.replace("{d}", &d.to_string()));
        }
        for n in 0..r {
            let _ = writeln!(w, "    var s{n} = q.r{n}v0 * k0;");
            for d in 1..d4 {
                let _ = writeln!(w, "    s{n} += q.r{n}v{d} * k{d};");
            }
        }
        let sums: Vec<String> = (0..r)
            .map(|n| format!("(s{n}.x + s{n}.y) + (s{n}.z + s{n}.w)"))
            .collect();
        let _ = writeln!(w, "    return RowsF({});\n}}", sums.join(", "));
    }
    for (name, what, base, read) in [
        (
            "block_axpy",
            "value `key` of the tile",
            tile_base,
            "v_tile[base + {d}u]",
        ),
        (
            "block_axpy_v",
            "the value at `key` of v",
            window_base,
            "input4(v_in[base + {d}u])",
        ),
    ] {
        let _ = writeln!(w, "// acc + p * v of every row for {what}.\nfn {name}(acc: Block, p: RowsF, key: u32) -> Block {{\n    let base = {base};");
        for d in 0..d4 {
            let _ = writeln!(w, "    let v{d} = {};", read.replace("{d}", &d.to_string()));
        }
        let _ = writeln!(
            w,
            "    return Block({});\n}}",
            fields(
                &|n, d| format!("acc.r{n}v{d} + {} * v{d}", at("p", n)),
                ", "
            )
        );
    }
    let _ = writeln!(
        w,
        "fn block_scale(acc: Block, factor: RowsF) -> Block {{\n    return Block({});\n}}",
        fields(&|n, d| format!("acc.r{n}v{d} * {}", at("factor", n)), ", ")
    );
    let mut store = String::from("// The output rows at `bases` (in vec4s) that are `valid`: acc * inverse.\nfn block_store(bases: RowsU, valid: RowsB, acc: Block, inverse: RowsF) {\n");
    for n in 0..r {
        let _ = writeln!(store, "    if {} {{", at("valid", n));
        for d in 0..d4 {
            let _ = writeln!(
                store,
                "        out[{} + {d}u] = output4(acc.r{n}v{d} * {});",
                at("bases", n),
                at("inverse", n)
            );
        }
        store.push_str("    }\n");
    }
    store.push_str("}\n");
    w.push_str(&store);
    let mut partial = String::from("// Each valid row's partial result at its `slots` (in vec4s): max and sum, then the accumulator.\nfn block_store_partial(slots: RowsU, valid: RowsB, running_max: RowsF, running_sum: RowsF, acc: Block) {\n");
    for n in 0..r {
        let slot = at("slots", n);
        let _ = writeln!(partial, "    if {} {{", at("valid", n));
        let _ = writeln!(
            partial,
            "        partial[{slot}] = vec4<f32>({}, {}, 0.0, 0.0);",
            at("running_max", n),
            at("running_sum", n)
        );
        for d in 0..d4 {
            let _ = writeln!(
                partial,
                "        partial[{slot} + {}u] = acc.r{n}v{d};",
                d + 1
            );
        }
        partial.push_str("    }\n");
    }
    partial.push_str("}\n");
    w.push_str(&partial);
    // The bias per row, from the one-row function (the same bits whatever R is).
    let args: Vec<String> = (0..r)
        .map(|n| {
            format!(
                "bias({}, {}, key, {}, {}, {}, key_position)",
                at("heads", n),
                at("rows", n),
                at("slopes", n),
                at("padding", n),
                at("query_positions", n)
            )
        })
        .collect();
    let _ = writeln!(
        w,
        "fn rows_bias(heads: RowsU, rows: RowsU, key: u32, slopes: RowsF, padding: RowsB, query_positions: RowsI, key_position: i32) -> RowsF {{\n    return RowsF({});\n}}",
        args.join(", ")
    );
    let slopes: Vec<String> = (0..r)
        .map(|n| {
            let head = at("heads", n);
            format!("alibi_packed_slope(slopes[min({head}, SLOPE_VEC4S * 4u - 1u) / 4u], {head})")
        })
        .collect();
    let _ = writeln!(
        w,
        "fn rows_slope(heads: RowsU) -> RowsF {{\n    return RowsF({});\n}}",
        slopes.join(", ")
    );
    w
}
