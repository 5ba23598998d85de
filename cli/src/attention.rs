//! `alibi attention`: fused attention with ALiBi in registers on `.npy` files,
//! `softmax(q k^T * scale + alibi) v` (docs/command-line.md, "attention"). Every check runs
//! before the GPU does; the output file is written last, whole, or not at all.

use std::path::{Path, PathBuf};

use alibi_wgpu::{AlibiConfig, AlibiPositionalBias, AttentionOptions, AttentionShape, SlopeSource};
use npyz::WriterBuilder as _;

use crate::backend::BackendChoice;
use crate::error::CliError;

/// The flags of `alibi attention`.
#[derive(clap::Args, Debug)]
pub struct AttentionArgs {
    /// Heads with a slope (at least 1).
    #[arg(long, value_name = "H")]
    pub heads: usize,
    /// Query heads: heads past --heads attend without a bias. Defaults to --heads.
    #[arg(long, value_name = "T")]
    pub total_heads: Option<usize>,
    /// Key/value heads (grouped-query attention): query head h reads key/value head
    /// h / (T / G). Defaults to T; must divide it.
    #[arg(long, value_name = "G")]
    pub kv_heads: Option<usize>,
    /// ggml / llama.cpp's slopes with this max_bias, computed exactly (8 gives the paper's).
    #[arg(long, value_name = "B", conflicts_with = "ggml_max_bias")]
    pub max_bias: Option<f64>,
    /// llama.cpp's f32 slopes with this max_bias, bit for bit its CPU backend's.
    #[arg(long, value_name = "B")]
    pub ggml_max_bias: Option<f32>,
    /// Hide every key after its query (bottom-right aligned: query row r sits at
    /// position j - i + r).
    #[arg(long)]
    pub causal: bool,
    /// A query at position p sees keys from p - L on (default: unlimited).
    #[arg(long, value_name = "L")]
    pub window_left: Option<u32>,
    /// A query at position p sees keys up to p + R (default: unlimited).
    #[arg(long, value_name = "R")]
    pub window_right: Option<u32>,
    /// Multiplies q . k before the bias is added (default: 1 / sqrt(d)).
    #[arg(long, value_name = "S", allow_negative_numbers = true)]
    pub scale: Option<f32>,
    /// Element type of Q, K, V and Y: f16 needs an adapter with shader-f16 (accumulated
    /// in f32).
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = Dtype::F32)]
    pub dtype: Dtype,
    /// Queries, [T, i, d] or [batch, T, i, d].
    #[arg(long, value_name = "Q.npy")]
    pub q: PathBuf,
    /// Keys, [G, j, d] or [batch, G, j, d].
    #[arg(long, value_name = "K.npy")]
    pub k: PathBuf,
    /// Values, K's shape.
    #[arg(long, value_name = "V.npy")]
    pub v: PathBuf,
    /// The output, with Q's shape and dtype.
    #[arg(long, value_name = "Y.npy")]
    pub out: PathBuf,
    /// Where to compute: auto is the default adapter (WGPU_BACKEND picks); attention
    /// needs a GPU adapter (lavapipe or llvmpipe will do).
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

/// `--dtype` of `alibi attention`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Dtype {
    F32,
    F16,
}

impl Dtype {
    fn numpy(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::F16 => "<f2",
        }
    }
}

/// An input array: its shape and values, widened to f32 when f16 (exactly).
struct Array {
    shape: Vec<usize>,
    values: Values,
}

enum Values {
    F32(Vec<f32>),
    F16(Vec<half::f16>),
}

pub fn run(args: &AttentionArgs) -> Result<(), CliError> {
    let total_heads = args.total_heads.unwrap_or(args.heads);
    let kv_heads = args.kv_heads.unwrap_or(total_heads);
    let source = match (args.max_bias, args.ggml_max_bias) {
        (Some(max_bias), _) => SlopeSource::MaxBias(max_bias),
        (None, Some(max_bias)) => SlopeSource::GgmlF32(max_bias),
        (None, None) => SlopeSource::Paper,
    };
    source.resolve(args.heads)?;
    alibi_wgpu::validate(args.heads, total_heads, 0, 0)?;
    check_out(&args.out)?;
    let [q, k, v] = [&args.q, &args.k, &args.v].map(|path| read(path, args.dtype));
    let (q, k, v) = (q?, k?, v?);
    let shape = shape(&q.shape, &k.shape, &v.shape, total_heads, kv_heads)?;

    let Some(gpu) = args.backend.open_gpu()? else {
        return Err(CliError::Usage(
            "attention runs on a GPU adapter, and --backend cpu names none".into(),
        ));
    };
    let config = AlibiConfig::new(args.heads)
        .total_heads(total_heads)
        .slopes(source)
        .causal(args.causal);
    let module = AlibiPositionalBias::on_device(&gpu, config)?;
    let mut options = AttentionOptions::new().window(args.window_left, args.window_right);
    if let Some(scale) = args.scale {
        options = options.scale(scale);
    }
    let out = match (q.values, k.values, v.values) {
        (Values::F32(q), Values::F32(k), Values::F32(v)) => Values::F32(pollster::block_on(
            module.attention(&q, &k, &v, shape, &options),
        )?),
        (Values::F16(q), Values::F16(k), Values::F16(v)) => Values::F16(pollster::block_on(
            module.attention_f16(&q, &k, &v, shape, &options),
        )?),
        _ => unreachable!("read() gives every array --dtype's type"),
    };
    write(&args.out, &q.shape, out, args.dtype)
}

/// The call's shape from the arrays': Q `[T, i, d]` or `[batch, T, i, d]`, K and V
/// `[G, j, d]` or `[batch, G, j, d]`, of one rank.
fn shape(
    q: &[usize],
    k: &[usize],
    v: &[usize],
    total_heads: usize,
    kv_heads: usize,
) -> Result<AttentionShape, CliError> {
    let bad = |what: String| Err(CliError::Usage(what));
    if !(q.len() == 3 || q.len() == 4) {
        return bad(format!(
            "--q must be [T, i, d] or [batch, T, i, d], got shape {q:?}"
        ));
    }
    if k.len() != q.len() || v != k {
        return bad(format!(
            "--k and --v must have one shape, of Q's rank ({}): got K {k:?}, V {v:?}",
            q.len()
        ));
    }
    let (batch, q, k) = if q.len() == 4 {
        if k[0] != q[0] {
            return bad(format!("Q's batch ({}) and K's ({}) differ", q[0], k[0]));
        }
        (q[0], &q[1..], &k[1..])
    } else {
        (1, q, k)
    };
    if q[0] != total_heads {
        return bad(format!(
            "Q has {} heads but --total-heads (or --heads) is {total_heads}",
            q[0]
        ));
    }
    if k[0] != kv_heads {
        return bad(format!(
            "K and V have {} heads but --kv-heads (default: T) is {kv_heads}",
            k[0]
        ));
    }
    if q[2] != k[2] {
        return bad(format!(
            "Q's head dimension ({}) and K's ({}) differ",
            q[2], k[2]
        ));
    }
    Ok(AttentionShape {
        batch,
        query_heads: total_heads,
        kv_heads,
        queries: q[1],
        keys: k[1],
        head_dim: q[2],
    })
}

/// `--out` must be a file in a directory that exists, not a directory itself.
fn check_out(out: &Path) -> Result<(), CliError> {
    let refuse = |reason: &str| CliError::Out {
        path: out.to_owned(),
        reason: reason.to_owned(),
        source: None,
    };
    if out.is_dir() {
        return Err(refuse("it is a directory; name a .npy file"));
    }
    let parent = out
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !parent.is_dir() {
        return Err(refuse("its directory does not exist"));
    }
    Ok(())
}

fn read(path: &Path, dtype: Dtype) -> Result<Array, CliError> {
    let io = |source| CliError::Io {
        action: "read",
        path: path.to_owned(),
        source,
    };
    let bytes = std::fs::read(path).map_err(io)?;
    let file = npyz::NpyFile::new(&bytes[..]).map_err(io)?;
    let shape: Vec<usize> = file.shape().iter().map(|&n| n as usize).collect();
    let type_str = file.dtype().descr();
    let wanted = dtype.numpy();
    if file.order() != npyz::Order::C || type_str.trim_matches('\'') != wanted {
        return Err(CliError::Usage(format!(
            "{} holds {type_str} ({:?} order); --dtype {} needs C-order {wanted}",
            path.display(),
            file.order(),
            match dtype {
                Dtype::F32 => "f32",
                Dtype::F16 => "f16",
            }
        )));
    }
    let values = match dtype {
        Dtype::F32 => Values::F32(file.into_vec::<f32>().map_err(io)?),
        Dtype::F16 => Values::F16(file.into_vec::<half::f16>().map_err(io)?),
    };
    Ok(Array { shape, values })
}

/// Writes `values` as a C-order `.npy` of `shape`, through a file beside `out` renamed
/// over it, so that a failure leaves no partial output.
fn write(out: &Path, shape: &[usize], values: Values, dtype: Dtype) -> Result<(), CliError> {
    let io = |source| CliError::Io {
        action: "write",
        path: out.to_owned(),
        source,
    };
    let partial = out.with_extension("npy.partial");
    let result = (|| -> std::io::Result<()> {
        let file = std::io::BufWriter::new(std::fs::File::create(&partial)?);
        let shape: Vec<u64> = shape.iter().map(|&n| n as u64).collect();
        match values {
            Values::F32(values) => write_values(file, &shape, dtype, values),
            Values::F16(values) => write_values(file, &shape, dtype, values),
        }
    })()
    .and_then(|()| std::fs::rename(&partial, out));
    if let Err(error) = result {
        let _ = std::fs::remove_file(&partial);
        return Err(io(error));
    }
    Ok(())
}

/// Writes `values` as a C-order `.npy` of `shape` with `dtype`'s little-endian type string
/// (npyz's default would be native-endian).
fn write_values<T: npyz::Serialize>(
    file: impl std::io::Write,
    shape: &[u64],
    dtype: Dtype,
    values: Vec<T>,
) -> std::io::Result<()> {
    let type_str = dtype.numpy().parse().expect("a valid numpy type string");
    let mut writer = npyz::WriteOptions::<T>::new()
        .dtype(npyz::DType::Plain(type_str))
        .shape(shape)
        .writer(file)
        .begin_nd()?;
    writer.extend(values)?;
    writer.finish()
}
