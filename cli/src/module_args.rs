//! The flags that describe an ALiBi module, declared once and flattened into every
//! subcommand that builds one (`bias`, `plot`), so that a flag has one spelling, one help
//! text and one meaning everywhere. `bench`, whose modules come from its `--case`s, takes
//! only the part that applies to them: [`GenerationArgs`].
//!
//! The spellings follow the library's API (`generation_path`); the earlier ones stay
//! accepted as hidden aliases, so that no command line that worked stops working.

use alibi_wgpu::{AlibiConfig, AlibiError, BiasDtype, GenerationPath, SlopeSource};

use crate::backend::BackendChoice;

/// The module's flags, and where it is computed.
#[derive(clap::Args, Debug)]
pub struct ModuleArgs {
    /// Heads with a slope (at least 1).
    #[arg(long, value_name = "H")]
    pub heads: usize,

    /// Output heads: heads past --heads are all zero. Defaults to --heads; must not be
    /// smaller.
    #[arg(long, value_name = "T")]
    pub total_heads: Option<usize>,

    /// Use ggml / llama.cpp's slopes with this max_bias, computed exactly, instead of the
    /// paper's (8 gives the paper's).
    #[arg(long, value_name = "F", conflicts_with = "ggml_max_bias")]
    pub max_bias: Option<f64>,

    /// Use llama.cpp's f32 slopes with this max_bias, bit for bit what its CPU backend
    /// computes (they differ from --max-bias's by an ulp or a few).
    #[arg(long, value_name = "F")]
    pub ggml_max_bias: Option<f32>,

    /// Mask every future key (k > j - i + r; with positions, key position > query
    /// position) with -inf, in every head.
    #[arg(long)]
    pub causal: bool,

    /// Element type of the bias: f16 rounds to nearest even and saturates at -65504
    /// (-inf stays -inf), on every adapter and on the CPU path.
    #[arg(long, value_enum, value_name = "TYPE", default_value_t = DtypeChoice::F32)]
    pub dtype: DtypeChoice,

    #[command(flatten)]
    pub generation: GenerationArgs,

    /// Where to compute: auto is the default adapter (WGPU_BACKEND picks), falling back to
    /// the CPU path when there is none; vulkan and gl fail when absent.
    #[arg(long, value_enum, value_name = "BACKEND", default_value_t = BackendChoice::Auto)]
    pub backend: BackendChoice,
}

/// `--generation-path`, alone: shared by [`ModuleArgs`] and `alibi bench`.
#[derive(clap::Args, Clone, Copy, Debug)]
pub struct GenerationArgs {
    /// How a GPU module generates: auto takes the host-mapped path on CPU adapters that
    /// allow it (lavapipe's Vulkan; not llvmpipe's GL) and the WGSL kernel elsewhere. Both
    /// give the same bytes. Not used by the CPU path.
    // `--generation` was its first spelling.
    #[arg(
        long = "generation-path",
        alias = "generation",
        value_enum,
        value_name = "PATH",
        default_value_t = GenerationChoice::Auto
    )]
    pub generation_path: GenerationChoice,
}

/// The module the flags describe, resolved once. The CLI keeps what it asked for here
/// rather than reading it back from an [`AlibiConfig`], whose getters are not its to rely
/// on.
#[derive(Clone, Debug)]
pub struct ModuleSpec {
    /// Heads with a slope.
    pub heads: usize,
    /// Output heads, padding included.
    pub total_heads: usize,
    /// Where the slopes come from.
    pub source: SlopeSource,
    /// One slope per head with a slope, as the module will have them.
    pub slopes: Vec<f32>,
    /// Future keys masked with -inf.
    pub causal: bool,
    /// The bias's element type.
    pub dtype: BiasDtype,
    /// Where a GPU module generates.
    pub generation_path: GenerationChoice,
}

impl ModuleArgs {
    /// Resolves the slopes and checks the heads, with the library's own messages, before
    /// any device is opened.
    pub fn resolve(&self) -> Result<ModuleSpec, AlibiError> {
        let total_heads = self.total_heads.unwrap_or(self.heads);
        let source = match (self.max_bias, self.ggml_max_bias) {
            (Some(max_bias), _) => SlopeSource::MaxBias(max_bias),
            (None, Some(max_bias)) => SlopeSource::GgmlF32(max_bias),
            (None, None) => SlopeSource::Paper,
        };
        let slopes = source.resolve(self.heads)?;
        alibi_wgpu::validate(slopes.len(), total_heads, 0, 0)?;
        Ok(ModuleSpec {
            heads: self.heads,
            total_heads,
            source,
            slopes,
            causal: self.causal,
            dtype: self.dtype.into(),
            generation_path: self.generation.generation_path,
        })
    }
}

impl ModuleSpec {
    /// The library's configuration of this module.
    pub fn config(&self) -> AlibiConfig {
        AlibiConfig::new(self.heads)
            .total_heads(self.total_heads)
            .slopes(self.source.clone())
            .causal(self.causal)
            .dtype(self.dtype)
            .generation_path(self.generation_path.into())
    }
}

/// The choices of `--generation-path`: where a GPU module computes what it generates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum GenerationChoice {
    /// The host-mapped path on CPU adapters that allow it (lavapipe's Vulkan), the kernel
    /// elsewhere.
    #[default]
    Auto,
    /// The WGSL kernel, on every adapter.
    Shader,
    /// The host's cores, writing through a mapping; an error where the device cannot.
    HostMapped,
}

impl From<GenerationChoice> for GenerationPath {
    fn from(choice: GenerationChoice) -> Self {
        match choice {
            GenerationChoice::Auto => GenerationPath::Auto,
            GenerationChoice::Shader => GenerationPath::Shader,
            GenerationChoice::HostMapped => GenerationPath::HostMapped,
        }
    }
}

/// `--dtype`: the element type of the bias.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeChoice {
    /// 32-bit floats, the values of docs/semantics.md exactly.
    #[default]
    F32,
    /// 16-bit floats (every adapter, and the CPU path).
    F16,
}

impl From<DtypeChoice> for BiasDtype {
    fn from(choice: DtypeChoice) -> Self {
        match choice {
            DtypeChoice::F32 => Self::F32,
            DtypeChoice::F16 => Self::F16,
        }
    }
}
