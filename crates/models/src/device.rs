use candle_core::{DType, Device};

/// Which device to run the model on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DevicePreference {
    /// A GPU when the crate was built with the `cuda` or `metal` feature and one
    /// is available, else the CPU.
    #[default]
    Auto,
    /// Always the CPU.
    Cpu,
}

/// True when this build can run models on a GPU (the `cuda` or `metal`
/// feature), so a settings form offers the choice only where it means
/// something.
pub fn gpu_support_built() -> bool {
    cfg!(any(feature = "cuda", feature = "metal"))
}

/// Picks a device and returns it with a human description ("cpu (8 threads)", "cuda:0").
pub fn select_device(pref: DevicePreference) -> (Device, String) {
    if pref == DevicePreference::Auto {
        #[cfg(feature = "cuda")]
        {
            match Device::new_cuda(0) {
                Ok(d) => return (d, "cuda:0".to_string()),
                Err(e) => tracing::warn!("CUDA device 0 not usable ({e}); using the CPU"),
            }
        }
        #[cfg(feature = "metal")]
        {
            match Device::new_metal(0) {
                Ok(d) => return (d, "metal:0".to_string()),
                Err(e) => tracing::warn!("Metal device 0 not usable ({e}); using the CPU"),
            }
        }
    }
    let threads = candle_core::utils::get_num_threads();
    (Device::Cpu, format!("cpu ({threads} threads)"))
}

/// The float type encoders run in on `device`: bf16 on a GPU that has
/// bf16 kernels (CUDA compute capability 8.0 and later, Metal), halving
/// weights and activations; f32 elsewhere. Never f16: BERT's additive
/// attention mask (the dtype's lowest value times 0) is NaN in f16.
pub fn model_dtype(device: &Device) -> DType {
    match device {
        Device::Cpu => DType::F32,
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => match cuda.cuda_stream().context().compute_capability() {
            Ok((major, _)) if major >= 8 => DType::BF16,
            _ => DType::F32,
        },
        _ => DType::BF16,
    }
}

/// Free memory on `device` in bytes, where the driver tells (CUDA); `None`
/// on the CPU and on Metal.
pub fn free_memory(device: &Device) -> Option<usize> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(cuda) => cuda
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _total)| free),
        _ => None,
    }
}

/// The sizes of a transformer encoder that decide its activation memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncoderShape {
    pub hidden: usize,
    pub intermediate: usize,
    pub heads: usize,
    /// The longest sequence it reads.
    pub max_len: usize,
}

impl EncoderShape {
    /// Activation bytes one token of a batch holds at the peak of a layer
    /// (hidden states, Q/K/V, attention scores and their softmax against
    /// up to `max_len` keys, the feed-forward's inner states), doubled for
    /// the allocator's slack and the kernels' temporaries.
    pub fn bytes_per_token(&self, dtype: DType) -> usize {
        let values = 6 * self.hidden + 2 * self.heads * self.max_len + 2 * self.intermediate;
        2 * values * dtype.size_in_bytes()
    }
}

/// How much one forward pass may take: texts, and padded tokens (texts ×
/// the longest one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchLimits {
    pub max_rows: usize,
    pub max_tokens: usize,
}

/// Share of a GPU's free memory a batch's activations may use: the rest is
/// for other programs' and the driver's growth.
const FREE_MEMORY_SHARE: f64 = 0.5;
/// The most padded tokens per pass on a GPU: beyond this, bigger batches
/// stop paying (kernels are saturated) and only delay the first results.
const GPU_MAX_TOKENS: usize = 64 * 1024;
/// The most texts per pass on a GPU.
const GPU_MAX_ROWS: usize = 256;
/// The token budget on a GPU whose free memory is unknown (Metal, which
/// shares the machine's memory).
const GPU_UNKNOWN_MEMORY_TOKENS: usize = 16 * 1024;

impl BatchLimits {
    /// `cpu` on the CPU (measured there); on a GPU, as many tokens as
    /// [`FREE_MEMORY_SHARE`] of its free memory holds for `shape` in
    /// `dtype`.
    pub fn for_device(device: &Device, shape: EncoderShape, dtype: DType, cpu: Self) -> Self {
        if device.is_cpu() {
            return cpu;
        }
        let limits = Self::for_gpu(free_memory(device), shape, dtype);
        tracing::debug!(?limits, "batch limits from the GPU's free memory");
        limits
    }

    /// The GPU rule, on a known (or unknown) amount of free memory. At
    /// least one longest sequence always fits.
    pub fn for_gpu(free_bytes: Option<usize>, shape: EncoderShape, dtype: DType) -> Self {
        let max_tokens = match free_bytes {
            Some(free) => {
                let budget = free as f64 * FREE_MEMORY_SHARE;
                (budget / shape.bytes_per_token(dtype) as f64) as usize
            }
            None => GPU_UNKNOWN_MEMORY_TOKENS,
        }
        .clamp(shape.max_len.max(1), GPU_MAX_TOKENS.max(shape.max_len));
        Self {
            max_rows: GPU_MAX_ROWS,
            max_tokens,
        }
    }

    /// How many of the texts sorted longest first fit one pass when the
    /// first (longest) has `longest` tokens: at least one.
    pub fn rows_for(&self, longest: usize) -> usize {
        (self.max_tokens / longest.max(1)).clamp(1, self.max_rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the build, a machine without a usable GPU runs on the CPU
    /// (a GPU build says why in a warning), and `Cpu` is always the CPU.
    #[test]
    fn without_a_gpu_the_cpu_is_used() {
        let (device, description) = select_device(DevicePreference::Cpu);
        assert!(device.is_cpu());
        assert!(description.starts_with("cpu ("), "{description}");
        let (device, description) = select_device(DevicePreference::Auto);
        if device.is_cpu() {
            assert!(description.starts_with("cpu ("), "{description}");
        } else {
            assert!(gpu_support_built(), "a GPU device from a CPU-only build");
        }
    }

    const MINI_LM: EncoderShape = EncoderShape {
        hidden: 384,
        intermediate: 1536,
        heads: 12,
        max_len: 256,
    };

    /// The CPU keeps its measured budget; a GPU's grows with its free
    /// memory, up to the cap, and never below one longest sequence.
    #[test]
    fn batch_limits_follow_the_devices_free_memory() {
        let cpu = BatchLimits {
            max_rows: 32,
            max_tokens: 4096,
        };
        assert_eq!(
            BatchLimits::for_device(&Device::Cpu, MINI_LM, DType::F32, cpu),
            cpu
        );
        let per_token = MINI_LM.bytes_per_token(DType::BF16);
        assert_eq!(per_token, 2 * (6 * 384 + 2 * 12 * 256 + 2 * 1536) * 2);
        let gib = 1usize << 30;
        let small = BatchLimits::for_gpu(Some(gib), MINI_LM, DType::BF16);
        assert_eq!(small.max_tokens, gib / 2 / per_token);
        let large = BatchLimits::for_gpu(Some(40 * gib), MINI_LM, DType::BF16);
        assert_eq!(large.max_tokens, GPU_MAX_TOKENS);
        let f32_small = BatchLimits::for_gpu(Some(gib), MINI_LM, DType::F32);
        assert!(f32_small.max_tokens < small.max_tokens);
        let starved = BatchLimits::for_gpu(Some(1 << 20), MINI_LM, DType::BF16);
        assert_eq!(starved.max_tokens, 256);
        assert_eq!(starved.rows_for(256), 1);
        assert_eq!(starved.rows_for(10_000), 1);
        let unknown = BatchLimits::for_gpu(None, MINI_LM, DType::BF16);
        assert_eq!(unknown.max_tokens, GPU_UNKNOWN_MEMORY_TOKENS);
        assert_eq!(unknown.rows_for(16), GPU_MAX_ROWS);
        assert_eq!(unknown.rows_for(128), 128);
    }

    #[test]
    fn encoders_run_in_f32_on_the_cpu() {
        assert_eq!(model_dtype(&Device::Cpu), DType::F32);
    }
}
