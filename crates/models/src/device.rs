use candle_core::Device;

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
}
