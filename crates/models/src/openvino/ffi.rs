//! The few functions of OpenVINO's C API that Quarry uses, loaded at run time.
//!
//! Nothing is linked at build time: `libopenvino_c` is opened with `libloading`
//! from a runtime directory (see [`super::runtime`]), so Quarry builds and runs
//! without OpenVINO and uses it only when it is installed.

use std::ffi::{c_char, c_void, CStr};
use std::path::Path;

use libloading::Library;

/// `ov_status_e`: 0 is success, negative values are errors.
pub type Status = i32;

/// `ov_element_type_e` codes this library uses. The enum lost its first member
/// (`UNDEFINED`) in newer releases, shifting every code by one, so the codes are
/// probed when the library is opened (see [`Api::open`]).
#[derive(Debug, Clone, Copy)]
pub struct ElementCodes {
    pub i8: u32,
    pub i64: u32,
}

/// `ov_shape_t`.
#[repr(C)]
pub struct Shape {
    pub rank: i64,
    pub dims: *mut i64,
}

/// `ov_version_t`.
#[repr(C)]
pub struct Version {
    pub build_number: *const c_char,
    pub description: *const c_char,
}

/// Opaque handles.
pub enum Core {}
pub enum Model {}
pub enum CompiledModel {}
pub enum InferRequest {}
pub enum Tensor {}

/// Function table of `libopenvino_c`.
pub struct Api {
    pub get_version: unsafe extern "C" fn(*mut Version) -> Status,
    pub version_free: unsafe extern "C" fn(*mut Version),
    pub last_err_msg: unsafe extern "C" fn() -> *const c_char,
    pub core_create: unsafe extern "C" fn(*mut *mut Core) -> Status,
    pub core_free: unsafe extern "C" fn(*mut Core),
    pub core_read_model_from_memory_buffer: unsafe extern "C" fn(
        *const Core,
        *const c_char,
        usize,
        *const Tensor,
        *mut *mut Model,
    ) -> Status,
    /// Variadic: `property_args_size` key/value C strings follow.
    pub core_compile_model: unsafe extern "C" fn(
        *const Core,
        *const Model,
        *const c_char,
        usize,
        *mut *mut CompiledModel,
        ...
    ) -> Status,
    pub model_free: unsafe extern "C" fn(*mut Model),
    pub compiled_model_free: unsafe extern "C" fn(*mut CompiledModel),
    pub compiled_model_create_infer_request:
        unsafe extern "C" fn(*const CompiledModel, *mut *mut InferRequest) -> Status,
    pub infer_request_free: unsafe extern "C" fn(*mut InferRequest),
    pub infer_request_set_input_tensor_by_index:
        unsafe extern "C" fn(*mut InferRequest, usize, *const Tensor) -> Status,
    pub infer_request_infer: unsafe extern "C" fn(*mut InferRequest) -> Status,
    pub infer_request_get_output_tensor_by_index:
        unsafe extern "C" fn(*const InferRequest, usize, *mut *mut Tensor) -> Status,
    pub shape_create: unsafe extern "C" fn(i64, *const i64, *mut Shape) -> Status,
    pub shape_free: unsafe extern "C" fn(*mut Shape) -> Status,
    pub tensor_create_from_host_ptr:
        unsafe extern "C" fn(u32, Shape, *mut c_void, *mut *mut Tensor) -> Status,
    pub tensor_get_shape: unsafe extern "C" fn(*const Tensor, *mut Shape) -> Status,
    pub tensor_data: unsafe extern "C" fn(*const Tensor, *mut *mut c_void) -> Status,
    pub tensor_free: unsafe extern "C" fn(*mut Tensor),
    tensor_create: unsafe extern "C" fn(u32, Shape, *mut *mut Tensor) -> Status,
    tensor_get_byte_size: unsafe extern "C" fn(*const Tensor, *mut usize) -> Status,
    /// Element type codes of this build.
    pub elements: ElementCodes,
    /// Keeps the library mapped for as long as the function pointers live.
    _library: Library,
}

impl Api {
    /// Opens `libopenvino_c` at `path` and resolves every function Quarry needs.
    pub fn open(path: &Path) -> Result<Api, String> {
        // SAFETY: loading a shared library runs its initialisers; libopenvino_c is
        // a well-behaved C library whose initialisers only register plugins.
        let library = unsafe { Library::new(path) }.map_err(|e| e.to_string())?;
        macro_rules! sym {
            ($name:literal) => {
                // SAFETY: the symbol's type is the C declaration in OpenVINO's headers.
                *unsafe { library.get(concat!($name, "\0").as_bytes()) }
                    .map_err(|e| format!("{}: {e}", $name))?
            };
        }
        let mut api = Api {
            get_version: sym!("ov_get_openvino_version"),
            version_free: sym!("ov_version_free"),
            last_err_msg: sym!("ov_get_last_err_msg"),
            core_create: sym!("ov_core_create"),
            core_free: sym!("ov_core_free"),
            core_read_model_from_memory_buffer: sym!("ov_core_read_model_from_memory_buffer"),
            core_compile_model: sym!("ov_core_compile_model"),
            model_free: sym!("ov_model_free"),
            compiled_model_free: sym!("ov_compiled_model_free"),
            compiled_model_create_infer_request: sym!("ov_compiled_model_create_infer_request"),
            infer_request_free: sym!("ov_infer_request_free"),
            infer_request_set_input_tensor_by_index: sym!(
                "ov_infer_request_set_input_tensor_by_index"
            ),
            infer_request_infer: sym!("ov_infer_request_infer"),
            infer_request_get_output_tensor_by_index: sym!(
                "ov_infer_request_get_output_tensor_by_index"
            ),
            shape_create: sym!("ov_shape_create"),
            shape_free: sym!("ov_shape_free"),
            tensor_create_from_host_ptr: sym!("ov_tensor_create_from_host_ptr"),
            tensor_get_shape: sym!("ov_tensor_get_shape"),
            tensor_data: sym!("ov_tensor_data"),
            tensor_free: sym!("ov_tensor_free"),
            tensor_create: sym!("ov_tensor_create"),
            tensor_get_byte_size: sym!("ov_tensor_get_byte_size"),
            elements: ElementCodes { i8: 0, i64: 0 },
            _library: library,
        };
        api.elements = api.probe_element_codes()?;
        Ok(api)
    }

    /// Builds an `ov_shape_t` for `dims`, passes it to `make`, and frees it.
    fn with_shape<T>(
        &self,
        dims: &[i64],
        make: impl FnOnce(Shape) -> Result<T, String>,
    ) -> Result<T, String> {
        let mut dims = dims.to_vec();
        let mut shape = Shape {
            rank: 0,
            dims: std::ptr::null_mut(),
        };
        // SAFETY: `dims` outlives the call; the shape is freed below, after `make`
        // (tensor constructors copy the shape).
        unsafe {
            self.check(
                (self.shape_create)(dims.len() as i64, dims.as_mut_ptr(), &mut shape),
                "creating a shape",
            )?;
        }
        let result = make(Shape {
            rank: shape.rank,
            dims: shape.dims,
        });
        // SAFETY: created above and not used after this.
        unsafe { (self.shape_free)(&mut shape) };
        result
    }

    /// Wraps host memory as a tensor of `element` with shape `dims` (no copy).
    ///
    /// # Safety
    /// `data` must hold `dims`' product of elements and outlive every use of the tensor.
    pub unsafe fn host_tensor(
        &self,
        element: u32,
        dims: &[i64],
        data: *mut c_void,
    ) -> Result<*mut Tensor, String> {
        self.with_shape(dims, |shape| {
            let mut tensor = std::ptr::null_mut();
            // SAFETY: the caller guarantees `data`; `tensor` is an out-pointer.
            let status =
                unsafe { (self.tensor_create_from_host_ptr)(element, shape, data, &mut tensor) };
            self.check(status, "wrapping memory as a tensor")?;
            Ok(tensor)
        })
    }

    /// Element code 10 is i64 in builds without `UNDEFINED` and i32 in older ones:
    /// a one-element tensor of that code is 8 or 4 bytes.
    fn probe_element_codes(&self) -> Result<ElementCodes, String> {
        let tensor = self.with_shape(&[1], |shape| {
            let mut tensor = std::ptr::null_mut();
            // SAFETY: `tensor` is an out-pointer; the tensor owns its memory.
            let status = unsafe { (self.tensor_create)(10, shape, &mut tensor) };
            self.check(status, "probing element types")?;
            Ok(tensor)
        })?;
        let mut bytes = 0usize;
        // SAFETY: `tensor` was created above and is freed once.
        let status = unsafe { (self.tensor_get_byte_size)(tensor, &mut bytes) };
        // SAFETY: as above.
        unsafe { (self.tensor_free)(tensor) };
        self.check(status, "probing element types")?;
        match bytes {
            8 => Ok(ElementCodes { i8: 7, i64: 10 }),
            4 => Ok(ElementCodes { i8: 8, i64: 11 }),
            other => Err(format!(
                "unrecognised element type codes ({other} bytes for code 10)"
            )),
        }
    }

    /// Turns a status into `Err` with OpenVINO's last error message and `what` failed.
    pub fn check(&self, status: Status, what: &str) -> Result<(), String> {
        if status == 0 {
            return Ok(());
        }
        // SAFETY: returns a thread-local, NUL-terminated string or null.
        let msg = unsafe { (self.last_err_msg)() };
        let detail = if msg.is_null() {
            String::new()
        } else {
            // SAFETY: non-null and NUL-terminated (see above).
            unsafe { CStr::from_ptr(msg) }
                .to_string_lossy()
                .trim()
                .to_string()
        };
        Err(format!("{what} failed (status {status}): {detail}"))
    }

    /// The runtime's version string, e.g. "2026.4.1-22982-…".
    pub fn version(&self) -> Option<String> {
        let mut v = Version {
            build_number: std::ptr::null(),
            description: std::ptr::null(),
        };
        // SAFETY: `v` is a valid out-parameter; freed below with the matching function.
        unsafe {
            if (self.get_version)(&mut v) != 0 || v.build_number.is_null() {
                return None;
            }
            let s = CStr::from_ptr(v.build_number)
                .to_string_lossy()
                .into_owned();
            (self.version_free)(&mut v);
            Some(s)
        }
    }
}
