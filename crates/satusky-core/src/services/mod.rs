//! Services.
pub struct Ctx;
pub struct Services;
pub struct ServicesConfig;
