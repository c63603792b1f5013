//! The broker's acknowledgements of one produced batch, gathered into one waiter: librdkafka's
//! delivery callback fills the batch's slot for each message and the last one wakes the
//! request (one channel per batch instead of one future per event).

use std::sync::{Arc, Mutex};

use rdkafka::error::KafkaError;
use rdkafka::producer::{DeliveryResult, ProducerContext};
use rdkafka::{ClientContext, Message};
use tokio::sync::oneshot;

use super::Delivery;

/// What became of one message: where it was stored, or why it was not.
pub(super) type Ack = Result<Delivery, KafkaError>;

/// The acknowledgements of a batch, complete once every message reported.
struct BatchAcks {
    state: Mutex<AckState>,
}

struct AckState {
    outcomes: Vec<Option<Ack>>,
    pending: usize,
    done: Option<oneshot::Sender<Vec<Ack>>>,
}

impl BatchAcks {
    fn complete(&self, index: usize, ack: Ack) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(slot) = state.outcomes.get_mut(index) else {
            return;
        };
        if slot.replace(ack).is_none() {
            state.pending -= 1;
        }
        if state.pending == 0 {
            if let Some(done) = state.done.take() {
                let outcomes = std::mem::take(&mut state.outcomes)
                    .into_iter()
                    .map(|ack| ack.unwrap_or(Err(KafkaError::Canceled)))
                    .collect();
                let _ = done.send(outcomes);
            }
        }
    }
}

/// One message's claim on its batch's slot. It reports exactly once, when dropped: the
/// broker's answer if one arrived, else [`KafkaError::Canceled`] (so a waiter never hangs on
/// a message librdkafka handed back or discarded).
pub(super) struct PendingAck {
    batch: Arc<BatchAcks>,
    index: usize,
    ack: Option<Ack>,
}

impl PendingAck {
    /// Records why the message was not queued; the batch learns it when this is dropped.
    pub(super) fn fail(mut self, error: KafkaError) {
        self.ack = Some(Err(error));
    }
}

impl Drop for PendingAck {
    fn drop(&mut self) {
        let ack = self.ack.take().unwrap_or(Err(KafkaError::Canceled));
        self.batch.complete(self.index, ack);
    }
}

/// A batch of `count` messages: one claim per message and the waiter for all of them.
pub(super) fn batch(count: usize) -> (Vec<PendingAck>, oneshot::Receiver<Vec<Ack>>) {
    let (done, waiter) = oneshot::channel();
    let batch = Arc::new(BatchAcks {
        state: Mutex::new(AckState {
            outcomes: (0..count).map(|_| None).collect(),
            pending: count,
            done: Some(done),
        }),
    });
    let claims = (0..count)
        .map(|index| PendingAck {
            batch: Arc::clone(&batch),
            index,
            ack: None,
        })
        .collect();
    (claims, waiter)
}

/// The producer context that routes delivery reports to their batch.
pub(super) struct BatchAckContext;

impl ClientContext for BatchAckContext {}

impl ProducerContext for BatchAckContext {
    type DeliveryOpaque = Box<PendingAck>;

    fn delivery(&self, result: &DeliveryResult<'_>, mut pending: Box<PendingAck>) {
        pending.ack = Some(match result {
            Ok(message) => Ok(Delivery {
                partition: message.partition(),
                offset: message.offset(),
            }),
            Err((error, _)) => Err(error.clone()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::types::RDKafkaErrorCode;

    #[tokio::test]
    async fn the_waiter_gets_every_outcome_in_batch_order_once_all_reported() {
        let (claims, mut waiter) = batch(3);
        let mut claims = claims.into_iter();
        let (first, second, third) = (claims.next(), claims.next(), claims.next());
        let mut third = third.unwrap();
        third.ack = Some(Ok(Delivery {
            partition: 2,
            offset: 7,
        }));
        drop(third);
        first
            .unwrap()
            .fail(KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull));
        assert!(waiter.try_recv().is_err(), "one message has not reported");
        drop(second);
        let outcomes = waiter.await.unwrap();
        assert_eq!(outcomes.len(), 3);
        assert_eq!(
            outcomes[0].as_ref().unwrap_err().rdkafka_error_code(),
            Some(RDKafkaErrorCode::QueueFull)
        );
        assert!(matches!(outcomes[1], Err(KafkaError::Canceled)));
        assert_eq!(
            outcomes[2].as_ref().unwrap(),
            &Delivery {
                partition: 2,
                offset: 7
            }
        );
    }

    #[tokio::test]
    async fn an_empty_batch_has_no_claims_and_its_waiter_ends() {
        let (claims, waiter) = batch(0);
        assert_eq!(claims.len(), 0);
        assert!(waiter.await.is_err());
    }
}
