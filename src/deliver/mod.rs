//! The deliverers: one attempt to bring a job's documents to one municipality, by protected
//! e-mail ([`mail`]) or as a letter in the postal print queue ([`mod@print`]). The queue decides
//! which and when; a deliverer only tries and reports what happened, and records nothing of
//! its own outside the store.

pub mod mail;
pub mod print;
