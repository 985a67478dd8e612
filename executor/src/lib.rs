//! # ferry-executor
//!
//! The executor behind the `ferry` command. So far: [`archive`], the archive
//! strategies an artifact goes through between a step's files and its driver.

pub mod archive;
