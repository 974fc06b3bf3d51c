//! Notification sinks: where warnings go after the centre stores them (webhook,
//! syslog, email). (Skeleton: being filled in.)
