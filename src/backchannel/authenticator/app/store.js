// The enrolled device, kept in IndexedDB: device id, bearer token, user and the key pair.
// CryptoKey objects are stored as they are; a non-extractable key stays non-extractable.

const DATABASE = "backchannel-authenticator";
const STORE = "device";
const KEY = "current";

function open() {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DATABASE, 1);
    request.onupgradeneeded = () => request.result.createObjectStore(STORE);
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function transact(mode, action) {
  const db = await open();
  try {
    return await new Promise((resolve, reject) => {
      const transaction = db.transaction(STORE, mode);
      const request = action(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  } finally {
    db.close();
  }
}

export function loadDevice() {
  return transact("readonly", (store) => store.get(KEY));
}

export function saveDevice(device) {
  return transact("readwrite", (store) => store.put(device, KEY));
}

export function forgetDevice() {
  return transact("readwrite", (store) => store.delete(KEY));
}
