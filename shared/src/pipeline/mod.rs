pub mod fifo;
